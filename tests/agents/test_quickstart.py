"""A reduced quickstart on real Meta-World: demos -> teacher -> Vid2Act and DreamerV2 -> table; a rerun reuses it all."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
REDUCED = ["demos=1", "demo_steps=20", "pretrain_steps=2", "pretrain_batch=2", "pretrain_seq_len=8", "env_steps=50",
           "prefill=25", "train_ratio=0.2", "batch_size=2", "seq_len=8", "replay_batch=2", "episode_steps=25",
           "eval_every=0", "eval_episodes=1", "progress=false"]


def _quickstart(out, *extra):
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.quickstart", *REDUCED, f"out_dir={out}", *extra],
                          env=ENV, capture_output=True, text=True, timeout=900, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_reduced_quickstart_prints_the_table_and_reuses_its_caches(tmp_path):
    out = tmp_path / "quickstart"
    stdout = _quickstart(out, "sources=[metaworld/door-close,metaworld/reach]")
    assert "vid2act" in stdout and "dreamerv2" in stdout and "metaworld/door-close" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["agents"]) == {"vid2act", "dreamerv2"}
    weights = summary["agents"]["vid2act"]["similarity_weight"]
    assert set(weights) == {"metaworld/door-close", "metaworld/reach"}
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-4)
    assert summary["agents"]["dreamerv2"]["env_steps"] == summary["agents"]["vid2act"]["env_steps"]
    for name in ("learning_curves.png", "similarity_weights_vid2act.png", "vid2act_eval.gif", "dreamerv2_eval.gif"):
        assert (out / name).exists(), name
    stdout = _quickstart(out, "sources=[metaworld/door-close,metaworld/reach]")
    assert "reusing finished runs of ['vid2act', 'dreamerv2']" in stdout and "collect 0 s" in stdout


def test_quickstart_rejects_a_target_among_the_sources(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.quickstart", "target=metaworld/door-close",
                           f"out_dir={tmp_path / 'q'}"], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "held out" in proc.stderr


def _quickstart_cfg(*overrides):
    from hydra import compose, initialize_config_module

    from vid2act.agents.schemas import register_configs

    register_configs()
    with initialize_config_module("vid2act.configs", version_base="1.3"):
        return compose("quickstart", overrides=[*REDUCED, *overrides])


def test_quickstart_refuses_cached_demos_of_another_render_quality(tmp_path, monkeypatch):
    import vid2act.envs
    from vid2act.agents.quickstart import run_quickstart
    from vid2act.components.data import OfflineDataset

    out = tmp_path / "q"
    OfflineDataset.create(out / "data" / "metaworld_door-close", task="metaworld/door-close", action_dim=4,
                          behaviour_policy="expert", render_quality="full")
    monkeypatch.setattr(vid2act.envs, "make_env", lambda *a, **k: pytest.fail("an env was made"))
    with pytest.raises(ValueError) as info:
        run_quickstart(_quickstart_cfg("render_quality=fast"), out)
    message = str(info.value)
    assert "\n" not in message and "render_quality='full'" in message and "render_quality='fast'" in message
    assert "pass render_quality=full" in message and str(out / "data" / "metaworld_door-close") in message
    with pytest.raises(ValueError, match="render_quality must be one of"):
        run_quickstart(_quickstart_cfg("render_quality=ultra"), tmp_path / "q2")
