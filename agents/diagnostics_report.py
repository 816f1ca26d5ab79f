"""The report's diagnostics section: what ``diagnose`` found in each run, averaged over seeds.

:func:`run_diagnostics` reads a run's newest ``diagnostics/diagnostics_<env frames>.json`` (written by
``python -m vid2act.agents.diagnose``); :func:`diagnostic_summaries` averages it over the seeds of every
(env, agent) group and :func:`format_diagnostics_table` writes the Markdown table. Files written with
``windows_from=`` (``diagnostics_<frames>_on_<agent>_seed<seed>.json``: a run's world model on another
run's frames) are listed apart by :func:`cross_replay_rows` / :func:`format_cross_replay_table`, beside the
model's error on its own frames, so two agents' models can be compared on the same frames.

Errors are open-loop pixel errors (mean absolute error per pixel, pixels in ``[0, 1]``) over the frames
predicted from the actions alone; see :mod:`vid2act.agents.diagnose`.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from vid2act.agents.report import RunRecord, by_group

__all__ = ["RunDiagnostics", "DiagnosticSummary", "CrossReplayRow", "run_diagnostics", "diagnostic_summaries",
           "format_diagnostics_table", "cross_replay_rows", "format_cross_replay_table"]

_OWN = re.compile(r"diagnostics_(\d+)\.json")
_CROSS = re.compile(r"diagnostics_(\d+)_on_(.+)\.json")
#: Keys of ``teacher_errors`` that are not teachers.
_NOT_TEACHERS = ("student", "hold_last_frame")


@dataclass
class RunDiagnostics:
    """The numbers of one run's diagnostics file (NaN / None where the run has no such part).

    Attributes:
        env_frames: env frames of the checkpoint the file describes.
        open_loop: the run's world model's open-loop error.
        hold_last_frame: the error of holding the last observed frame still.
        best_teacher / best_teacher_error: the teacher with the lowest open-loop error (Vid2Act runs).
        top_teacher / top_teacher_error: the teacher with the highest similarity weight, and its error.
        nearest_teacher: the teacher with the smallest distillation distance ``||e_t - f_distill(s_t^i)||^2``
            (Eq. 4) on the windows (the distance the weights are trained on; ``None`` in files that lack it).
        guidance_shift: mean absolute change of the deterministic action per dimension when another
            source's guidance replaces the selected one's.
        state_spread: the deterministic action's spread over states (same units).
        saturated_share: share of action entries with ``|a| > 0.99``.
    """

    env_frames: int
    open_loop: float
    hold_last_frame: float
    best_teacher: str | None
    best_teacher_error: float
    top_teacher: str | None
    top_teacher_error: float
    nearest_teacher: str | None
    guidance_shift: float
    state_spread: float
    saturated_share: float


def _matching(folder: pathlib.Path, pattern: re.Pattern) -> list[tuple[int, pathlib.Path, re.Match]]:
    """Files in ``folder`` whose name matches ``pattern``, as ``(env frames, path, match)``, oldest first."""
    found = [(int(m.group(1)), p, m) for p in folder.glob("diagnostics_*.json") if (m := pattern.fullmatch(p.name))]
    return sorted(found, key=lambda x: x[0])


def _read(path: pathlib.Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a diagnostics JSON file ({e}); rerun `python -m vid2act.agents.diagnose "
                         f"run_dir={path.parent.parent}` or delete it.") from None


def _parse(d: dict, path: pathlib.Path) -> RunDiagnostics:
    nan = float("nan")
    try:
        errors = {k: float(v["open_loop"]) for k, v in d["teacher_errors"].items()}
        actor = d.get("actor") or {}
        teachers = {k: v for k, v in errors.items() if k not in _NOT_TEACHERS}
        weights = d.get("similarity_weight") or {}
        best = min(teachers, key=teachers.get) if teachers else None
        top = max(weights, key=weights.get) if weights else None
        distances = d.get("distill_error") or {}
        nearest = min(distances, key=distances.get) if distances else None
        guidance = d.get("guidance") or {}
        return RunDiagnostics(
            env_frames=int(d["env_frames"]), open_loop=errors["student"],
            hold_last_frame=errors.get("hold_last_frame", nan),
            best_teacher=best, best_teacher_error=teachers[best] if best else nan,
            top_teacher=top, top_teacher_error=teachers.get(top, nan) if top else nan, nearest_teacher=nearest,
            guidance_shift=float(guidance.get("other_source_shift", nan)),
            state_spread=float(actor.get("state_spread", nan)),
            saturated_share=float(actor.get("saturated_share", nan)))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: diagnostics file lacks {e} (written by an older diagnose?); rerun "
                         f"`python -m vid2act.agents.diagnose run_dir={path.parent.parent}`.") from None


def run_diagnostics(run_dir: str | pathlib.Path) -> RunDiagnostics | None:
    """The run's newest own-replay diagnostics (``diagnostics/diagnostics_<frames>.json``), or ``None``.

    Raises:
        ValueError: the file is not JSON or lacks a field ``diagnose`` writes (the message names the file and
            the command that rewrites it).
    """
    found = _matching(pathlib.Path(run_dir) / "diagnostics", _OWN)
    if not found:
        return None
    path = found[-1][1]
    return _parse(_read(path), path)


@dataclass
class DiagnosticSummary:
    """One (env, agent) group: every number of :class:`RunDiagnostics` averaged over its seeds.

    ``best_teacher`` / ``top_teacher`` / ``nearest_teacher`` count the seeds per teacher name
    (``{"door-close": 2, ...}``).
    """

    env: str
    agent: str
    seeds: list[int]
    env_frames: list[int]
    means: dict[str, float]
    best_teacher: dict[str, int]
    top_teacher: dict[str, int]
    nearest_teacher: dict[str, int]


_MEANS = ("open_loop", "hold_last_frame", "best_teacher_error", "top_teacher_error", "guidance_shift",
          "state_spread", "saturated_share")


def _counts(names: list[str | None]) -> dict[str, int]:
    """Seeds per name, most frequent first (ties by name); ``None`` is not counted."""
    return dict(sorted(Counter(n for n in names if n is not None).items(), key=lambda kv: (-kv[1], kv[0])))


def diagnostic_summaries(records: list[RunRecord]) -> list[DiagnosticSummary]:
    """Per (env, agent): :func:`run_diagnostics` of its runs that have one, averaged over seeds (NaN-aware)."""
    out = []
    for (env, agent), runs in by_group(records).items():
        kept = [(r.seed, d) for r in runs if (d := run_diagnostics(r.path)) is not None]
        if not kept:
            continue
        means = {}
        for key in _MEANS:
            vals = np.array([getattr(d, key) for _, d in kept], dtype=float)
            means[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        out.append(DiagnosticSummary(env, agent, [s for s, _ in kept], [d.env_frames for _, d in kept], means,
                                     _counts([d.best_teacher for _, d in kept]),
                                     _counts([d.top_teacher for _, d in kept]),
                                     _counts([d.nearest_teacher for _, d in kept])))
    return out


def _f(x: float, digits: int = 4) -> str:
    return "-" if not np.isfinite(x) else f"{x:.{digits}f}"


def _names(counts: dict[str, int], seeds: int) -> str:
    return "-" if not counts else ", ".join(f"{k} ({v}/{seeds})" for k, v in counts.items())


def format_diagnostics_table(groups: list[DiagnosticSummary]) -> str:
    """Markdown: per env and agent, the diagnostics' means over seeds (``-`` where a part does not apply)."""
    lines = ["| env | agent | open-loop error | hold last frame | best teacher (seeds) | its error | "
             "top-weighted teacher (seeds) | its error | nearest teacher in feature space (seeds) | guidance shift | "
             "action spread over states | actions at the bounds | seeds |", "|---|---|" + "---|" * 11]
    for g in groups:
        m, n = g.means, len(g.seeds)
        lines.append(f"| {g.env} | {g.agent} | {_f(m['open_loop'])} | {_f(m['hold_last_frame'])} | "
                     f"{_names(g.best_teacher, n)} | {_f(m['best_teacher_error'])} | {_names(g.top_teacher, n)} | "
                     f"{_f(m['top_teacher_error'])} | {_names(g.nearest_teacher, n)} | {_f(m['guidance_shift'], 3)} | "
                     f"{_f(m['state_spread'], 3)} | "
                     f"{_f(m['saturated_share'], 2)} | {n} |")
    return "\n".join(lines)


@dataclass
class CrossReplayRow:
    """One run's world model on another run's frames (a ``windows_from=`` diagnostics file)."""

    env: str
    agent: str
    seed: int
    frames_of: str
    open_loop: float
    own_open_loop: float


def cross_replay_rows(records: list[RunRecord]) -> list[CrossReplayRow]:
    """Every run's newest ``diagnostics_<frames>_on_<tag>.json`` per tag, beside its own-frames error.

    Raises:
        ValueError: as :func:`run_diagnostics`.
    """
    rows = []
    for r in sorted(records, key=lambda r: (r.env, r.agent, r.seed)):
        newest: dict[str, pathlib.Path] = {}
        for _, path, m in _matching(r.path / "diagnostics", _CROSS):
            newest[m.group(2)] = path
        if not newest:
            continue
        own = run_diagnostics(r.path)
        for tag, path in sorted(newest.items()):
            raw = _read(path)
            d = _parse(raw, path)
            windows = raw.get("windows") if isinstance(raw.get("windows"), dict) else {}
            frames_of = windows.get("from_label") or tag.replace("_seed", " seed ")  # files written before it
            rows.append(CrossReplayRow(r.env, r.agent, r.seed, str(frames_of), d.open_loop,
                                       own.open_loop if own else float("nan")))
    return rows


def format_cross_replay_table(rows: list[CrossReplayRow]) -> str:
    """Markdown: a run's open-loop error on another run's frames and on its own."""
    lines = ["| env | model | on the frames of | open-loop error there | on its own frames |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.env} | {r.agent} seed {r.seed} | {r.frames_of} | {_f(r.open_loop)} | "
                     f"{_f(r.own_open_loop)} |")
    return "\n".join(lines)
