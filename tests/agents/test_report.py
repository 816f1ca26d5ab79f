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
    assert "| dmc/cartpole-balance | vid2act | 40 ± 10 | 2 | 2000 |" in result["table"]
    assert (tmp_path / "report.png").exists() and (tmp_path / "report.md").exists()
    assert json.loads((tmp_path / "report.json").read_text())["groups"][0]["env"] == "dmc/cartpole-balance"


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder"):
        find_runs(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "vid2act.agents.report", f"runs={tmp_path / 'missing'}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "no such directory" in proc.stderr
