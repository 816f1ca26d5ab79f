"""The report's transfer part: AUC ratios against DreamerV2 by hand, and which source each target picks."""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from vid2act.agents.report import find_runs, run_report
from vid2act.agents.transfer_report import area_under_curve, compare_auc, source_choices

SOURCES = ("metaworld_door-close", "metaworld_faucet-open", "metaworld_reach-wall")


def _csv(run, name, rows):
    path = run / "metrics" / "scalars" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{f},{v}\n" for f, v in rows))


def _run(root, env, agent, seed, curve, weights=None, acting=None):
    run = root / env.replace("/", "_") / agent / f"seed{seed}"
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save({"env": {"name": env}, "agent": {"name": "vid2act" if weights else agent}, "seed": seed},
                   run / ".hydra" / "config.yaml")
    OmegaConf.save({"hydra": {"runtime": {"choices": {"agent": agent}}}}, run / ".hydra" / "hydra.yaml")
    _csv(run, "eval/return", curve)
    for task, rows in (weights or {}).items():
        _csv(run, f"train/similarity_weight/{task}", rows)
    for task, rows in (acting or {}).items():
        _csv(run, f"acting/selected_task_count/{task}", rows)
    return run


def test_area_under_curve_by_hand():
    # trapezoids over [0, 10] of 0 -> 10 -> 10: (0 + 10) / 2 * 5 + 10 * 5 = 75; / 10 frames = 7.5
    assert area_under_curve([0, 5, 10], [0, 10, 10]) == pytest.approx(7.5)
    assert area_under_curve([2000], [4.0]) == 4.0  # one evaluation: its value
    with pytest.raises(ValueError, match="non-empty"):
        area_under_curve([], [])


def test_auc_ratio_on_shared_frames_against_the_baseline(tmp_path):
    env = "metaworld/door-lock"
    for seed, top in enumerate((20.0, 40.0)):  # AUCs over [0, 2000]: (0 + top) / 2 -> 10, 20
        _run(tmp_path, env, "vid2act", seed, [(0, 0.0), (1000, top / 2), (2000, top), (3000, 99.0)])
    _run(tmp_path, env, "dreamerv2", 0, [(0, 0.0), (1000, 5.0), (2000, 10.0)])  # AUC 5, reached 2000 only
    _run(tmp_path, "metaworld/drawer-open", "vid2act", 0, [(0, 1.0)])  # no baseline on this env: no comparison
    (c,) = compare_auc(find_runs(tmp_path))
    assert (c.env, c.agent, c.baseline) == (env, "vid2act", "dreamerv2")
    assert c.frames.tolist() == [0, 1000, 2000]  # the 3000-frame evaluation is not the baseline's
    np.testing.assert_allclose(c.agent_auc, [10.0, 20.0])
    np.testing.assert_allclose(c.baseline_auc, [5.0])
    assert c.ratio == pytest.approx(3.0)  # mean(10, 20) / 5
    assert c.ratio_ci == pytest.approx((2.0, 4.0))  # resampled vid2act means 10, 15, 20 over a fixed 5

    result = run_report(tmp_path)
    assert "| metaworld/door-lock | vid2act | 15 ± 5 | dreamerv2: 5 ± 0 | 3 [2, 4] | 2 vs 1 | 0-2000 |" in result["table"]
    saved = json.loads((tmp_path / "report.json").read_text())["auc"]
    assert saved[0]["ratio"] == pytest.approx(3.0) and saved[0]["agent_auc"] == [10.0, 20.0]
    assert "Area under the curve" in (tmp_path / "report.md").read_text()


def test_source_choice_and_acting_agreement(tmp_path):
    env = "metaworld/door-lock"
    frames = [1000, 2000, 3000, 4000, 5000]
    # seed 0: door-close rises to 0.6 (last 20% of [1000, 5000] = frames >= 4200: the 5000 row)
    w0 = {SOURCES[0]: [(f, v) for f, v in zip(frames, (0.33, 0.4, 0.5, 0.55, 0.6))],
          SOURCES[1]: [(f, 0.3) for f in frames],
          SOURCES[2]: [(f, v) for f, v in zip(frames, (0.37, 0.3, 0.2, 0.15, 0.1))]}
    a0 = {SOURCES[0]: [(1000, 300), (2000, 400)], SOURCES[1]: [(1000, 200)], SOURCES[2]: [(1000, 100)]}
    _run(tmp_path, env, "vid2act", 0, [(5000, 1.0)], w0, a0)
    # seed 1: the highest weight is faucet-open but it acted mostly with reach-wall (they disagree)
    w1 = {SOURCES[0]: [(f, 0.2) for f in frames], SOURCES[1]: [(f, 0.5) for f in frames],
          SOURCES[2]: [(f, 0.3) for f in frames]}
    a1 = {SOURCES[0]: [(1000, 0)], SOURCES[1]: [(1000, 100)], SOURCES[2]: [(1000, 900)]}
    _run(tmp_path, env, "vid2act", 1, [(5000, 2.0)], w1, a1)
    _run(tmp_path, env, "dreamerv2", 0, [(5000, 1.0)])  # no weights: not in the source table
    (c,) = source_choices(find_runs(tmp_path))
    assert c.sources == list(SOURCES) and c.seeds == [0, 1]
    np.testing.assert_allclose(c.final_weight, [(0.6 + 0.2) / 2, (0.3 + 0.5) / 2, (0.1 + 0.3) / 2])
    np.testing.assert_allclose(c.acting_share, [(0.7 + 0.0) / 2, (0.2 + 0.1) / 2, (0.1 + 0.9) / 2])
    assert c.top_weight == [SOURCES[0], SOURCES[1]] and c.top_acting == [SOURCES[0], SOURCES[2]]
    assert c.agree == 1

    run_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert f"| {env} | vid2act | {SOURCES[0]} | 0.400 | 0.35 | 1/2 | 1/2 |" in md
    assert (tmp_path / "report_weights.png").stat().st_size > 10_000


def test_other_metrics_write_their_own_files(tmp_path):
    run = _run(tmp_path, "metaworld/door-lock", "dreamerv2", 0, [(1000, 5.0)])
    _csv(run, "eval/success", [(1000, 0.5)])
    run_report(tmp_path)
    run_report(tmp_path, "eval/success")
    assert {p.name for p in tmp_path.glob("report*")} == {
        "report.md", "report.json", "report.png", "report_eval_success.md", "report_eval_success.json",
        "report_eval_success.png"}


def test_model_loss_terms_average_the_tail_and_give_the_distill_share(tmp_path):
    from vid2act.agents.transfer_report import model_loss_terms, run_loss_terms

    env = "metaworld/door-lock"
    w = {SOURCES[0]: [(0, 1.0)]}
    runs = [_run(tmp_path, env, "vid2act", seed, [(0, 0.0)], weights=w) for seed in (0, 1)]
    for seed, run in enumerate(runs):
        # frames 0..1000: the last 20% of the span are the rows at 800, 900 and 1000
        _csv(run, "train/loss_model_reco", [(f, 100.0 if f < 800 else 6.0 + seed) for f in range(0, 1001, 100)])
        _csv(run, "train/loss_model_reward", [(0, 9.0), (1000, 1.0)])
        _csv(run, "train/loss_model_kl", [(1000, 1.0)])
        _csv(run, "train/loss_distill", [(1000, 2.0)])
    base = _run(tmp_path, env, "dreamerv2", 0, [(0, 0.0)])
    _csv(base, "train/loss_model_reco", [(1000, 8.0)])

    terms = run_loss_terms(runs[1] / "metrics" / "scalars")
    assert terms["loss_model_reco"] == pytest.approx(7.0) and terms["loss_model_reward"] == pytest.approx(1.0)
    assert terms["distill_share"] == pytest.approx(2.0 / 11.0)
    groups = {g.agent: g for g in model_loss_terms(find_runs(tmp_path))}
    assert groups["vid2act"].seeds == [0, 1]
    assert groups["vid2act"].terms["loss_model_reco"] == pytest.approx(6.5)  # mean of 6 and 7
    assert groups["dreamerv2"].terms == pytest.approx(
        {"loss_model_reco": 8.0, "loss_model_reward": 0.0, "loss_model_kl": 0.0, "loss_distill": 0.0,
         "distill_share": 0.0})
    run_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Model-loss terms" in md and "| metaworld/door-lock | dreamerv2 | 8 | 0 | 0 | 0 | 0.00 | 1 |" in md
