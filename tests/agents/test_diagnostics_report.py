"""The report's diagnostics tables: means over seeds, the newest file, cross-replay rows, bad files."""

import json

import pytest
from omegaconf import OmegaConf

from vid2act.agents.diagnostics_report import (cross_replay_rows, diagnostic_summaries, format_diagnostics_table,
                                               run_diagnostics)
from vid2act.agents.report import find_runs, run_report


def _run(root, agent, seed):
    run = root / agent / f"seed{seed}"
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save({"env": {"name": "metaworld/door-lock"}, "agent": {"name": agent}, "seed": seed},
                   run / ".hydra" / "config.yaml")
    OmegaConf.save({"hydra": {"runtime": {"choices": {"agent": agent}}}}, run / ".hydra" / "hydra.yaml")
    path = run / "metrics" / "scalars" / "eval" / "return.csv"
    path.parent.mkdir(parents=True)
    path.write_text("1000,1.0\n2000,2.0\n")
    return run


def _diagnostics(run, frames, student, teachers=None, weights=None, shift=None, name=None, distances=None):
    errors = {"student": {"context": 0.01, "open_loop": student}, "hold_last_frame": {"context": 0.0, "open_loop": 0.003}}
    errors.update({k: {"context": 0.02, "open_loop": v} for k, v in (teachers or {}).items()})
    d = {"env": "metaworld/door-lock", "env_frames": frames, "teacher_errors": errors,
         "actor": {"state_spread": 0.5, "sample_spread": 0.01, "saturated_share": 0.9}}
    if weights:
        d["similarity_weight"] = weights
    if shift is not None:
        d["guidance"] = {"other_source_shift": shift}
    if distances:
        d["distill_error"] = distances
    folder = run / "diagnostics"
    folder.mkdir(exist_ok=True)
    (folder / (name or f"diagnostics_{frames:08d}.json")).write_text(json.dumps(d))


def test_means_over_seeds_name_the_best_and_the_top_weighted_teacher(tmp_path):
    for seed, (best, err) in enumerate((("door-close", 0.02), ("handle-press", 0.025))):
        run = _run(tmp_path, "vid2act", seed)
        teachers = {"door-close": 0.03, "handle-press": 0.05, "window-close": 0.06}
        teachers[best] = err
        _diagnostics(run, 2000, 0.1 + seed, teachers, {"door-close": 0.1, "handle-press": 0.1, "window-close": 0.8},
                     shift=0.02 * (seed + 1), distances={"door-close": 9.0, "handle-press": 8.0, "window-close": 1.0})
        _diagnostics(run, 1000, 9.0, teachers)  # older: ignored
    dv2 = _run(tmp_path, "dreamerv2", 0)
    _diagnostics(dv2, 2000, 0.05)
    _run(tmp_path, "dreamerv2", 1)  # never diagnosed: left out

    groups = {g.agent: g for g in diagnostic_summaries(find_runs(tmp_path))}
    v, d = groups["vid2act"], groups["dreamerv2"]
    assert v.seeds == [0, 1] and d.seeds == [0]
    assert v.means["open_loop"] == pytest.approx(0.6)  # (0.1 + 1.1) / 2, not the older files' 9.0
    assert v.best_teacher == {"door-close": 1, "handle-press": 1}
    assert v.means["best_teacher_error"] == pytest.approx(0.0225)
    assert v.top_teacher == {"window-close": 2} and v.means["top_teacher_error"] == pytest.approx(0.06)
    assert v.nearest_teacher == {"window-close": 2} and d.nearest_teacher == {}
    assert v.means["guidance_shift"] == pytest.approx(0.03)
    assert d.best_teacher == {} and d.means["guidance_shift"] != d.means["guidance_shift"]  # NaN: no teachers
    table = format_diagnostics_table([d, v])
    assert "| metaworld/door-lock | dreamerv2 | 0.0500 | 0.0030 | - | - | - | - | - | - | 0.500 | 0.90 | 1 |" in table
    assert "window-close (2/2)" in table


def test_cross_replay_rows_sit_beside_the_models_own_error_and_reach_the_report(tmp_path):
    v, d = _run(tmp_path, "vid2act", 0), _run(tmp_path, "dreamerv2", 0)
    _diagnostics(v, 2000, 0.031, {"door-close": 0.027})
    _diagnostics(d, 2000, 0.016)
    _diagnostics(v, 2000, 0.029, {"door-close": 0.023}, name="diagnostics_00002000_on_dreamerv2_seed0.json")
    _diagnostics(d, 2000, 0.019, name="diagnostics_00002000_on_vid2act_seed0.json")
    rows = {r.agent: r for r in cross_replay_rows(find_runs(tmp_path))}
    assert (rows["vid2act"].frames_of, rows["vid2act"].open_loop, rows["vid2act"].own_open_loop) == \
        ("dreamerv2 seed 0", 0.029, 0.031)
    assert rows["dreamerv2"].open_loop == 0.019 and rows["dreamerv2"].own_open_loop == 0.016
    # A cross file is never taken for the run's own diagnostics.
    assert run_diagnostics(v).open_loop == 0.031

    run_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Diagnostics" in md and "| metaworld/door-lock | vid2act seed 0 | dreamerv2 seed 0 | 0.0290 | 0.0310 |" in md
    saved = json.loads((tmp_path / "report.json").read_text())
    assert {g["agent"] for g in saved["diagnostics"]} == {"vid2act", "dreamerv2"} and len(saved["cross_replay"]) == 2


def test_a_cross_file_is_named_by_the_label_it_records_over_its_file_tag(tmp_path):
    d = _run(tmp_path, "dreamerv2", 0)
    _diagnostics(d, 2000, 0.016)
    name = "diagnostics_00002000_on_vid2act-alpha=0.0026-_seed0.json"  # the file-safe tag of a knob run
    _diagnostics(d, 2000, 0.021, name=name)
    assert cross_replay_rows(find_runs(tmp_path))[0].frames_of == "vid2act-alpha=0.0026- seed 0"  # older files
    path = d / "diagnostics" / name
    saved = json.loads(path.read_text())
    saved["windows"] = {"from": "/runs/vid2act_alpha/seed0", "from_label": "vid2act[alpha=0.0026] seed 0"}
    path.write_text(json.dumps(saved))
    assert cross_replay_rows(find_runs(tmp_path))[0].frames_of == "vid2act[alpha=0.0026] seed 0"


def test_a_corrupt_or_incomplete_diagnostics_file_names_itself(tmp_path):
    run = _run(tmp_path, "vid2act", 0)
    (run / "diagnostics").mkdir()
    bad = run / "diagnostics" / "diagnostics_00002000.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="diagnostics_00002000.json: not a diagnostics JSON file"):
        run_diagnostics(run)
    bad.write_text(json.dumps({"env_frames": 2000}))
    with pytest.raises(ValueError, match="lacks 'teacher_errors'.*vid2act.agents.diagnose run_dir="):
        run_diagnostics(run)
    assert run_diagnostics(_run(tmp_path, "dreamerv2", 0)) is None  # no diagnostics folder: nothing to report
