"""The report aggregates runs over seeds per (env, agent variant) on the frames every seed reached."""

import json
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from vid2act.agents.report import aggregate, find_runs, run_report


def _run(root, env, agent, seed, curve, **agent_fields):
    run = root / env.replace("/", "_") / agent / f"seed{seed}"
    (run / ".hydra").mkdir(parents=True)
    name = "vid2act" if agent in ("uniform_weights", "no_guidance") else agent
    OmegaConf.save({"env": {"name": env}, "agent": {"name": name, **agent_fields}, "seed": seed},
                   run / ".hydra" / "config.yaml")
    csv = run / "metrics" / "scalars" / "eval" / "return.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text("".join(f"{f},{v}\n" for f, v in curve))
    return run


def test_groups_average_over_seeds_on_shared_frames(tmp_path):
    _run(tmp_path, "dmc/cartpole-balance", "vid2act", 0, [(1000, 10.0), (2000, 30.0), (3000, 50.0)])
    _run(tmp_path, "dmc/cartpole-balance", "vid2act", 1, [(1000, 20.0), (2000, 50.0)])  # still running
    _run(tmp_path, "dmc/cartpole-balance", "dreamerv2", 0, [(1000, 5.0), (2000, 7.0)])
    _run(tmp_path, "dmc/cartpole-balance", "uniform_weights", 0, [(1000, 1.0)], weights="uniform")
    groups = {g.agent: g for g in aggregate(find_runs(tmp_path))}
    assert set(groups) == {"vid2act", "dreamerv2", "uniform_weights"}
    v = groups["vid2act"]
    assert v.seeds == [0, 1] and v.frames.tolist() == [1000, 2000]
    np.testing.assert_allclose(v.mean, [15.0, 40.0])
    np.testing.assert_allclose(v.std, [5.0, 10.0])

    result = run_report(tmp_path)
    # IQM of 2 seeds = their mean; resampling {30, 50} gives means 30 / 40 / 50: the 95% interval is [30, 50]
    assert "| dmc/cartpole-balance | vid2act | 40 ± 10 | 40 [30, 50] | 2 | 2000 |" in result["table"]
    assert (tmp_path / "report.png").exists() and (tmp_path / "report.md").exists()
    assert json.loads((tmp_path / "report.json").read_text())["groups"][0]["env"] == "dmc/cartpole-balance"


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder"):
        find_runs(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.report", f"runs={tmp_path / 'missing'}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "no such directory" in proc.stderr


def _kept(monkeypatch):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    return figures


def test_iqm_with_bootstrap_interval_beside_mean_and_std(tmp_path, monkeypatch):
    finals = [10.0, 20.0, 30.0, 1000.0]  # an outlier seed: the IQM (mean of 20, 30 = 25) ignores it
    for seed, final in enumerate(finals):
        _run(tmp_path, "dmc/walker-stand", "vid2act", seed, [(1000, 0.0), (2000, final)])
    _run(tmp_path, "dmc/walker-stand", "dreamerv2", 0, [(2000, 5.0)])  # one evaluation, one seed
    for seed in (0, 1):
        _run(tmp_path, "dmc/cheetah-run", "vid2act", seed, [(2000, 100.0 + seed)])
    figures = _kept(monkeypatch)
    result = run_report(tmp_path)
    walker = next(g for g in result["groups"] if g["env"] == "dmc/walker-stand" and g["agent"] == "vid2act")
    assert walker["final"] == finals and walker["iqm"] == pytest.approx(25.0)
    assert walker["mean"][-1] == pytest.approx(np.mean(finals))
    low, high = walker["iqm_ci95"]
    assert low <= walker["iqm"] <= high and low >= 10.0 and high <= 1000.0
    assert "| dmc/walker-stand | vid2act | 265 ± 424 | 25 [" in result["table"]
    # the envs pooled per agent, resampled within each env
    (pooled,) = [s for s in result["all_envs"] if s["agent"] == "vid2act"]
    assert pooled["runs"] == 6 and pooled["envs"] == ["dmc/cheetah-run", "dmc/walker-stand"]
    assert pooled["iqm_ci95"][0] <= pooled["iqm"] <= pooled["iqm_ci95"][1]
    assert "All envs pooled" in result["table"] and "| vid2act | 2 | 6 |" in result["table"]
    assert json.loads((tmp_path / "report.json").read_text())["all_envs"] == result["all_envs"]

    (fig,) = figures
    title = fig._suptitle.get_text()
    assert "eval/return" in title and "seeds 0, 1, 2, 3" in title
    walker_ax = next(ax for ax in fig.axes if ax.get_title() == "dmc/walker-stand")
    assert walker_ax.get_xlabel() == "env frames" and "sum of rewards" in walker_ax.get_ylabel()
    # the single-evaluation curve (dreamerv2) is a visible dot, not an invisible 1-point line
    markers = [line.get_marker() for line in walker_ax.get_lines() if len(line.get_xdata()) == 1]
    assert "o" in markers
    intervals = [ax for ax in fig.axes if ax.get_xlabel().startswith("final")]
    assert len(intervals) == 3  # walker, cheetah, all envs pooled
    assert [t.get_text() for t in intervals[-1].get_yticklabels()] == ["dreamerv2 (n=1)", "vid2act (n=6)"]
    assert fig.legends and all(ax.get_legend() is None for ax in fig.axes)  # legend below, off the data


def test_success_reports_stay_on_zero_one(tmp_path, monkeypatch):
    for seed, value in enumerate((0.0, 1.0, 1.0)):
        run = _run(tmp_path, "metaworld/door-lock", "vid2act", seed, [(1000, 0.0)])
        csv = run / "metrics" / "scalars" / "eval" / "success.csv"
        csv.write_text(f"1000,0.0\n2000,{value}\n")
    figures = _kept(monkeypatch)
    result = run_report(tmp_path, "eval/success")
    assert result["groups"][0]["iqm"] == pytest.approx(2 / 3)
    (fig,) = figures
    for ax in fig.axes:
        limits = ax.get_ylim() if ax.get_title() == "metaworld/door-lock" else ax.get_xlim()
        if ax.get_title() == "metaworld/door-lock" or ax.get_xlabel().startswith("final"):
            assert limits[0] <= 0 and 1 <= limits[1] <= 1.1


def test_the_runs_own_config_wins_over_a_later_refused_call_in_its_folder(tmp_path):
    """With ``out_dir=``, Hydra rewrites ``.hydra/`` at every call in the run folder, a refused resume included."""
    from vid2act.agents.report import _run_labels

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    own = {"env": {"name": "dmc/cartpole-balance"}, "agent": {"name": "dreamerv2"}, "seed": 0}
    OmegaConf.save(own, run / "config.yaml")
    OmegaConf.save({"hydra": {"runtime": {"choices": {"agent": "no_distill"}}}}, run / ".hydra" / "hydra.yaml")
    OmegaConf.save(own, run / ".hydra" / "config.yaml")  # the run's own call: its agent= choice names it
    assert _run_labels(run) == ("dmc/cartpole-balance", "no_distill", 0)
    refused = {"env": {"name": "dmc/walker-walk"}, "agent": {"name": "vid2act"}, "seed": 3}
    OmegaConf.save(refused, run / ".hydra" / "config.yaml")
    OmegaConf.save({"hydra": {"runtime": {"choices": {"agent": "vid2act"}}}}, run / ".hydra" / "hydra.yaml")
    assert _run_labels(run) == ("dmc/cartpole-balance", "dreamerv2", 0)


def test_a_vid2act_knob_set_away_from_its_default_is_its_own_variant(tmp_path):
    """``agent.alpha=0.01`` runs are grouped apart from default Vid2Act runs, also under the ``agent=`` choice."""
    from vid2act.agents.report import _run_labels

    default = _run(tmp_path, "metaworld/door-lock", "vid2act", 0, [(1000, 1.0)], alpha=1.0)
    knob = _run(tmp_path, "metaworld/door-lock", "vid2act_knob", 0, [(1000, 2.0)], alpha=0.01, weight_floor=0.1)
    OmegaConf.save({"hydra": {"runtime": {"choices": {"agent": "vid2act"}}}}, knob / ".hydra" / "hydra.yaml")
    cfg = OmegaConf.load(knob / ".hydra" / "config.yaml")
    cfg.agent.name = "vid2act"
    OmegaConf.save(cfg, knob / ".hydra" / "config.yaml")
    assert _run_labels(default) == ("metaworld/door-lock", "vid2act", 0)
    assert _run_labels(knob) == ("metaworld/door-lock", "vid2act[alpha=0.01,weight_floor=0.1]", 0)
    assert sorted(r.agent for r in find_runs(tmp_path)) == ["vid2act", "vid2act[alpha=0.01,weight_floor=0.1]"]


def test_variant_knobs_leave_named_ablations_and_other_agents_alone():
    from vid2act.agents.train import agent_variant

    assert agent_variant(OmegaConf.create({"name": "vid2act", "alpha": 0.0})) == "vid2act_alpha0"
    assert agent_variant(OmegaConf.create({"name": "vid2act", "weights": "uniform"})) == "uniform_weights"
    assert agent_variant(OmegaConf.create({"name": "vid2act", "guidance": False, "teacher_input": "student_state"})) \
        == "no_guidance[teacher_input=student_state]"
    assert agent_variant(OmegaConf.create({"name": "vid2act", "distill_hidden_dims": [64]})) \
        == "vid2act[distill_hidden_dims=[64]]"
    assert agent_variant(OmegaConf.create({"name": "dreamerv2", "alpha": 0.5})) == "dreamerv2"


def test_runs_on_other_teacher_checkpoints_are_grouped_apart(tmp_path):
    """Vid2Act runs on two teacher checkpoints are two groups named by the teachers' folders; DreamerV2 keeps its label."""
    for seed, teacher in ((0, "results/teachers_6k/teachers.pt"), (1, "results/teachers_6k/teachers.pt"),
                          (2, "results/teachers_12k/teachers.pt")):
        run = _run(tmp_path, "metaworld/door-lock", "vid2act", seed, [(1000, float(seed))])
        cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
        cfg.teacher = teacher
        OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    _run(tmp_path, "metaworld/door-lock", "dreamerv2", 0, [(1000, 5.0)])
    groups = {g.agent: g.seeds for g in aggregate(find_runs(tmp_path))}
    assert groups == {"vid2act@teachers_6k": [0, 1], "vid2act@teachers_12k": [2], "dreamerv2": [0]}


def test_one_teacher_checkpoint_leaves_the_labels_alone(tmp_path):
    run = _run(tmp_path, "metaworld/door-lock", "vid2act", 0, [(1000, 1.0)])
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    cfg.teacher = "results/teachers_6k/teachers.pt"
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    assert [r.agent for r in find_runs(tmp_path)] == ["vid2act"]


def _vid2act_on(tmp_path, seed, teacher):
    run = _run(tmp_path, "metaworld/door-lock", "vid2act", seed, [(1000, float(seed))])
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    cfg.teacher = str(teacher)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")


def test_one_checkpoint_under_two_checkouts_is_one_group(tmp_path):
    """Absolute teacher paths of two checkouts (files not on this machine) with one folder name are one
    checkpoint; another folder is another group."""
    runs = tmp_path / "runs"
    _vid2act_on(runs, 0, "/old/checkout/results/teachers_6k/teachers.pt")
    _vid2act_on(runs, 1, "/new/checkout/results/teachers_6k/teachers.pt")
    _vid2act_on(runs, 2, "/new/checkout/results/teachers_12k/teachers.pt")
    groups = {g.agent: g.seeds for g in aggregate(find_runs(runs))}
    assert groups == {"vid2act@teachers_6k": [0, 1], "vid2act@teachers_12k": [2]}


def test_different_checkpoints_in_same_named_folders_are_told_apart_by_content(tmp_path):
    runs, a, b, c = tmp_path / "runs", tmp_path / "a/teacher", tmp_path / "b/teacher", tmp_path / "c/teacher"
    for folder, data in ((a, b"one"), (b, b"two"), (c, b"one")):
        folder.mkdir(parents=True)
        (folder / "teachers.pt").write_bytes(data)
    for seed, folder in enumerate((a, b, c)):
        _vid2act_on(runs, seed, folder / "teachers.pt")
    groups = {g.agent: g.seeds for g in aggregate(find_runs(runs))}
    assert groups == {f"vid2act@{a / 'teachers.pt'}": [0, 2], f"vid2act@{b / 'teachers.pt'}": [1]}
