"""The main job end to end on real Meta-World: ``python -m vid2act.agents.quickstart`` (``make quickstart``).

1. collect scripted-expert demonstrations of the source tasks at ``render_quality`` (cached: a dataset
   that already holds ``demos`` episodes is reused; one of another render quality is an error);
2. pretrain a reward-free ``tiny`` mixture teacher on them (cached: resumed from ``teachers.pt``);
3. train every agent of ``agents`` (default Vid2Act and DreamerV2) on the held-out target with the same
   budget and seed (cached: a finished run is not retrained);
4. print a summary table (success and return of the final evaluation, learned similarity weight and
   acting share of every source, wall time) and write ``learning_curves.png``, ``similarity_weights.png``,
   an evaluation GIF per agent and ``summary.json`` under ``out_dir`` (``outputs/quickstart``);
   ``similarity_weights_<agent>.png`` for every Vid2Act variant.

Every stage writes to ``out_dir``: ``data/<source>/``, ``teacher/``, ``runs/<agent>/``.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import time
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from vid2act.agents.errors import cli_errors

log = logging.getLogger(__name__)

__all__ = ["run_quickstart", "format_summary"]


def _slug(task: str) -> str:
    return task.replace("/", "_")


def _collect_sources(cfg: DictConfig, data_root: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Collect (or reuse) ``cfg.demos`` expert episodes of every source at ``cfg.render_quality``.

    Raises:
        ValueError: a cached dataset holds frames of another render quality (one line: both qualities,
            its path and the fixes).
    """
    from vid2act.agents.collect import collect
    from vid2act.components.data import OfflineDataset

    out = {}
    quality = cfg.get("render_quality", "fast")
    for i, task in enumerate(cfg.sources):
        path = data_root / _slug(task)
        have = 0
        if (path / "manifest.json").exists():
            cached = OfflineDataset.open(path)
            if cached.render_quality != quality:
                raise ValueError(
                    f"the cached demonstrations at {path} hold render_quality={cached.render_quality!r} frames, "
                    f"this quickstart renders render_quality={quality!r}; pass render_quality={cached.render_quality} "
                    f"or another out_dir= (or delete {data_root})"
                )
            have = cached.episodes
        if have < cfg.demos:
            s = collect(task, str(path), policy="expert", episodes=cfg.demos - have, seed=cfg.seed + 100 * i + have,
                        max_episode_steps=cfg.demo_steps, progress=cfg.progress, render_quality=quality)
            log.info("%s: %d expert demos, mean return %.1f, success rate %s", task, s.episodes, s.mean_return,
                     s.success_rate)
        ds = OfflineDataset.open(path)
        out[task] = {"episodes": ds.episodes, "frames": ds.frames}
    return out


def _compose(name: str, overrides: list[str]) -> DictConfig:
    return hydra.compose(config_name=name, overrides=overrides)


def _finished(run_dir: pathlib.Path, overrides: list[str]) -> dict[str, Any] | None:
    path = run_dir / "result.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    return saved if saved.get("overrides") == overrides else None


def _train_one(train_cfg: DictConfig, run_dir: pathlib.Path, overrides: list[str], position: int | None) -> None:
    """Train one agent from scratch and record ``result.json`` (runs in a worker process when parallel)."""
    from vid2act.agents.train import run_training

    if train_cfg.torch_threads:
        import torch

        torch.set_num_threads(train_cfg.torch_threads)
    shutil.rmtree(run_dir, ignore_errors=True)  # a stale or interrupted run of other settings
    t0 = time.perf_counter()
    result = run_training(train_cfg, run_dir, progress_desc=f"train {train_cfg.agent.name}", progress_position=position)
    done = {"overrides": overrides, "result": result, "seconds": time.perf_counter() - t0}
    tmp = run_dir / "result.json.tmp"
    tmp.write_text(json.dumps(done, indent=1))
    tmp.replace(run_dir / "result.json")


def _train_all(jobs: dict[str, tuple[DictConfig, pathlib.Path, list[str]]], *, parallel: bool) -> None:
    """Train the agents one after the other, or side by side in spawned processes (one CPU core each)."""
    if not parallel or len(jobs) < 2:
        for cfg, run_dir, overrides in jobs.values():
            _train_one(cfg, run_dir, overrides, None)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(len(jobs), mp_context=mp.get_context("spawn")) as pool:
        futures = {agent: pool.submit(_train_one, cfg, run_dir, overrides, i)
                   for i, (agent, (cfg, run_dir, overrides)) in enumerate(jobs.items())}
        for agent, future in futures.items():
            try:
                future.result()
            except Exception as err:
                from vid2act.agents.errors import is_expected

                if is_expected(err):  # its message names the run folder: reported as it is
                    raise
                raise RuntimeError(f"training {agent} failed: {err}") from err


def _preflight(cfg: DictConfig) -> None:
    """The budgets against the episode lengths, before the first demonstration is recorded.

    Raises:
        ValueError: a size below its minimum, a target budget below one ``episode_steps`` episode, or a
            ``seq_len`` / ``pretrain_seq_len`` longer than the target's / the demonstrations' episodes.
    """
    from vid2act.agents.preflight import check_at_least, check_seq_len, check_train_budget

    where = "the quickstart config"
    check_at_least({**{k: (cfg[k], 1) for k in ("demos", "demo_steps", "pretrain_steps", "pretrain_batch",
                                                 "pretrain_seq_len", "env_steps", "batch_size", "seq_len",
                                                 "replay_batch", "episode_steps", "eval_episodes")},
                    **{k: (cfg[k], 0) for k in ("prefill", "train_ratio", "pretrain_updates", "eval_every")}},
                   where=where)
    check_train_budget(cfg.target, env_steps=cfg.env_steps, checkpoint_every=0, seq_len=cfg.seq_len,
                       max_episode_steps=cfg.episode_steps, where=where, episode_key="episode_steps")
    check_seq_len(cfg.pretrain_seq_len, {task: [cfg.demo_steps + 1] for task in cfg.sources},
                  where=f"{where} (demonstrations of demo_steps={cfg.demo_steps} env steps)", key="pretrain_seq_len")


def run_quickstart(cfg: DictConfig, out_dir: pathlib.Path) -> dict[str, Any]:
    """Run the four stages (see the module docstring); returns the summary written to ``summary.json``.

    Raises:
        ValueError: fewer than 2 sources, the target among the sources, an unknown agent or
            ``render_quality``, budgets that do not fit the episodes (checked before any work), or cached
            demonstrations of another render quality.
        FileNotFoundError / DatasetError / CheckpointError: from the stages (bad cached files are
            reported with their path; delete them to start that stage afresh).
    """
    import torch

    from vid2act.agents.plots import plot_agent_comparison
    from vid2act.agents.pretrain import run_pretraining

    if len(cfg.sources) < 2:
        raise ValueError(f"sources={list(cfg.sources)}: transfer needs at least 2 source tasks")
    if cfg.target in cfg.sources:
        raise ValueError(f"target={cfg.target} is also a source; the target must be held out")
    unknown = [a for a in cfg.agents if a not in ("vid2act", "dreamerv2", "uniform_weights", "no_guidance", "finetune")]
    if unknown:
        raise ValueError(f"agents {unknown} unknown; choose from vid2act, dreamerv2, uniform_weights, no_guidance, finetune")
    from vid2act.envs.rendering import check_render_quality

    quality = check_render_quality(cfg.get("render_quality", "fast"))
    _preflight(cfg)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    print(f"[1/3] expert demonstrations of {list(cfg.sources)}", flush=True)
    data = _collect_sources(cfg, out_dir / "data")
    timings["collect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print(f"[2/3] pretraining a {cfg.model} mixture teacher for {cfg.pretrain_steps} gradient steps", flush=True)
    teacher_dir = out_dir / "teacher"
    pre_cfg = _compose("pretrain", [
        f"data={out_dir / 'data'}", f"model={cfg.model}", f"steps={cfg.pretrain_steps}",
        f"batch_size={cfg.pretrain_batch}", f"seq_len={cfg.pretrain_seq_len}", "logger=csv", "resume=true",
        f"checkpoint_every={cfg.pretrain_steps}", f"seed={cfg.seed}", f"progress={cfg.progress}",
        f"sources=[{','.join(_slug(t) for t in cfg.sources)}]", "preview_sequences=2",
    ])
    pre = run_pretraining(pre_cfg, teacher_dir)
    timings["pretrain"] = time.perf_counter() - t0

    jobs = {}
    for agent in cfg.agents:
        run_dir = out_dir / "runs" / agent
        overrides = [
            f"agent={agent}", f"env={cfg.target}", f"model={cfg.model}", "logger=csv", f"seed={cfg.seed}",
            f"env.max_episode_steps={cfg.episode_steps}", f"env_steps={cfg.env_steps}", f"prefill={cfg.prefill}",
            f"train_ratio={cfg.train_ratio}", f"pretrain_updates={cfg.pretrain_updates}",
            f"batch_size={cfg.batch_size}", f"seq_len={cfg.seq_len}",
            f"eval_every={cfg.eval_every}", f"eval_episodes={cfg.eval_episodes}", "checkpoint_every=0",
            f"progress={cfg.progress}", f"torch_threads={cfg.torch_threads or 'null'}",
            f"env.render_quality={quality}",
        ]
        if agent != "dreamerv2":
            overrides += [f"teacher={teacher_dir / 'teachers.pt'}"]
        if agent in ("vid2act", "uniform_weights"):
            overrides += [f"agent.replay_batch={cfg.replay_batch}"]
        # a finished run is reused only for the same settings AND the same teacher and demonstrations
        fingerprint = [*overrides, f"#teacher_steps={pre['steps']}", f"#sources={list(cfg.sources)}",
                       f"#demos={cfg.demos}x{cfg.demo_steps}", f"#pretrain={cfg.pretrain_batch}x{cfg.pretrain_seq_len}"]
        if _finished(run_dir, fingerprint) is None:
            jobs[agent] = (_compose("train", overrides), run_dir, fingerprint)
    cached = [a for a in cfg.agents if a not in jobs]
    print(f"[3/3] training {list(jobs)} on {cfg.target} for {cfg.env_steps} env steps each"
          + (f" (side by side, {len(jobs)} processes)" if len(jobs) > 1 and cfg.parallel else "")
          + (f"; reusing finished runs of {cached}" if cached else ""), flush=True)
    _train_all(jobs, parallel=cfg.parallel)
    results: dict[str, dict[str, Any]] = {}
    for agent in cfg.agents:
        run_dir = out_dir / "runs" / agent
        done = json.loads((run_dir / "result.json").read_text())
        results[agent] = {**done["result"], "seconds": done["seconds"],
                          **_weights(run_dir / "metrics" / "scalars", cfg.sources)}
        videos = sorted((run_dir / "videos").glob("*.gif"))
        if videos:
            shutil.copyfile(videos[-1], out_dir / f"{agent}_eval.gif")
        if (run_dir / "similarity_weights.png").exists():
            shutil.copyfile(run_dir / "similarity_weights.png", out_dir / f"similarity_weights_{agent}.png")
    plot_agent_comparison({a: out_dir / "runs" / a / "metrics" / "scalars" for a in cfg.agents},
                          out_dir / "learning_curves.png",
                          title=f"{cfg.target} | {' vs '.join(cfg.agents)} | seed {cfg.seed}")
    summary = {"target": cfg.target, "sources": data, "teacher": {k: pre[k] for k in ("steps", "loss_model_reco", "kl")},
               "agents": results, "timings": timings, "out_dir": str(out_dir)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _weights(csv_dir: pathlib.Path, sources) -> dict[str, Any]:
    """Last logged similarity weight and the acting share of every source (empty for DreamerV2)."""
    from vid2act.agents.plots import read_scalar

    weights, counts = {}, {}
    for task in sources:
        name = _slug(task)
        _, w = read_scalar(csv_dir, f"train/similarity_weight/{name}")
        _, c = read_scalar(csv_dir, f"acting/selected_task_count/{name}")
        if len(w):
            weights[task], counts[task] = float(w[-1]), float(c.sum())
    total = sum(counts.values())
    return {"similarity_weight": weights,
            "acting_share": {t: c / total for t, c in counts.items()} if total else {}} if weights else {}


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as plain-text tables (agents, then sources)."""
    agents = summary["agents"]
    lines = [f"target {summary['target']}", "",
             f"{'agent':<16}{'success':>9}{'return':>10}{'env steps':>11}{'updates':>9}{'wall s':>9}"]
    for name, r in agents.items():
        lines.append(f"{name:<16}{r.get('success', float('nan')):>9.2f}{r.get('return', float('nan')):>10.1f}"
                     f"{r['env_steps']:>11}{r['updates']:>9}{r['seconds']:>9.0f}")
    weighted = [a for a, r in agents.items() if r.get("similarity_weight")]
    if weighted:
        lines += ["", f"{'source':<28}{'demos':>6}" + "".join(f"{'w ' + a:>22}{'acting ' + a:>22}" for a in weighted)]
        for task, info in summary["sources"].items():
            row = f"{task:<28}{info['episodes']:>6}"
            for a in weighted:
                row += f"{agents[a]['similarity_weight'][task]:>22.3f}{agents[a]['acting_share'].get(task, 0.0):>22.2f}"
            lines.append(row)
    t = summary["timings"]
    lines += ["", f"collect {t['collect']:.0f} s, pretrain {t['pretrain']:.0f} s; outputs in {summary['out_dir']}"]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="pkg://vid2act.configs", config_name="quickstart")
@cli_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point; see the module docstring."""
    summary = run_quickstart(cfg, pathlib.Path(cfg.out_dir))
    print(format_summary(summary))
    log.debug("config: %s", OmegaConf.to_yaml(cfg))


if __name__ == "__main__":
    from vid2act.agents.cli import run

    run(main)
