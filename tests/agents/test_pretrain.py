"""Teacher pretraining (Eq. 1-2) on real DMC source datasets: open_sources, TeacherTrainer and the CLI."""
import csv
import os
import shutil
import subprocess
import sys

import pytest
import torch

from vid2act.agents.pretrain import TeacherTrainer, open_sources
from vid2act.components.data import DatasetError, OfflineDataset
from vid2act.components.transfer.teacher_bank import TeacherBank
from vid2act.components.world_model import WorldModelConfig

pytestmark = pytest.mark.slow
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
TASKS = ("cartpole-swingup", "reacher-easy")  # action dims 1 and 2
PRETRAIN = ["model=tiny", "batch_size=2", "seq_len=8", "log_every=2", "checkpoint_every=2", "preview_sequences=1",
            "preview_length=8", "preview_context=3", "torch_threads=1", "logger=csv", "progress=false"]


def _cli(module, *overrides, cwd, ok=True):
    proc = subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two real DMC source datasets of one 30-step random episode each."""
    base = tmp_path_factory.mktemp("sources")
    for task in TASKS:
        _cli("vid2act.agents.collect", f"env=dmc/{task}", "policy=random", "episodes=1",
             "env.max_episode_steps=30", f"out={base / 'data' / task}", cwd=base)
    return base / "data"


@pytest.fixture(scope="module")
def mixture_run(root, tmp_path_factory):
    """A 4-step mixture pretraining run of the CLI (checkpoints at steps 2 and 4)."""
    out = tmp_path_factory.mktemp("pretrain") / "run"
    proc = _cli("vid2act.agents.pretrain", f"data={root}", *PRETRAIN, "steps=4", f"out_dir={out}", cwd=out.parent)
    return out, proc.stdout


def _trainer(layout, data, seed=0, **kw):
    torch.manual_seed(seed)
    return TeacherTrainer(WorldModelConfig.from_preset("tiny"), layout=layout, source_tasks=data.names,
                          action_dim=data.action_dim, **kw)


def _weights(trainer):
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in trainer.models]


def _changed(before, after):
    return any(not torch.equal(before[k], after[k]) for k in before)


def _csv(path):
    with open(path) as f:
        return [(int(row[0]), float(row[1])) for row in csv.reader(f) if row and row[0].isdigit()]


def test_open_sources_pads_actions_and_reports_bad_roots(root, tmp_path):
    data = open_sources(root)
    assert data.names == TASKS and data.action_dim == 2 and data.source_action_dims == dict(zip(TASKS, (1, 2)))
    batch = data.sample(2, 8)
    assert batch.shape == (2, 2, 8) and batch["prev_action"].shape == (2, 2, 8, 2)
    assert (batch["prev_action"][0, ..., 1] == 0).all()  # cartpole's action is zero-padded
    assert open_sources(root, sources=["reacher-easy"]).names == ("reacher-easy",)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        open_sources(tmp_path / "missing")
    with pytest.raises(FileNotFoundError) as err:
        open_sources(root, sources=["cartpole-swingup", "walker-walk"])
    assert "walker-walk" in str(err.value) and all(task in str(err.value) for task in TASKS)
    with pytest.raises(DatasetError, match="wider"):
        open_sources(root, action_dim=1)
    OfflineDataset.create(tmp_path / "empty_root" / "empty", task="dmc/cartpole-swingup", action_dim=1,
                          behaviour_policy="random")
    with pytest.raises(DatasetError, match="without episodes"):
        open_sources(tmp_path / "empty_root")


@pytest.mark.parametrize("layout", ["mixture", "ensemble"])
def test_update_reports_per_source_metrics_and_changes_the_weights(root, layout):
    data = open_sources(root)
    trainer = _trainer(layout, data)
    assert len(trainer.models) == (1 if layout == "mixture" else 2)
    before = _weights(trainer)
    torch.manual_seed(1)
    metrics = trainer.update(data.sample(2, 8))
    for key in ("loss_model_reco", "loss_model_kl", "kl", "grad_norm_model"):
        assert torch.isfinite(metrics[key]) and not metrics[key].requires_grad
    for task in TASKS:
        for key in ("loss_model_reco", "loss_model_kl", "kl"):
            assert torch.isfinite(metrics[f"{key}/{task}"]), (key, task)
    per_source = torch.stack([metrics[f"loss_model_reco/{t}"] for t in TASKS])
    torch.testing.assert_close(per_source.mean(), metrics["loss_model_reco"])  # balanced batch
    assert all(_changed(b, a) for b, a in zip(before, _weights(trainer)))
    with pytest.raises(ValueError, match=r"\[N=2, B, T\]"):
        trainer.update(data.sample(2, 8)[:1])


def test_mixture_training_reduces_the_reconstruction_loss(root):
    data = open_sources(root)
    trainer = _trainer("mixture", data, lr=1e-3)
    torch.manual_seed(2)
    batch = data.sample(2, 8)
    losses = [float(trainer.update(batch)["loss_model_reco"]) for _ in range(5)]
    assert losses[-1] < 0.97 * losses[0], losses


def test_ensemble_model_i_learns_only_from_source_i(root):
    data = open_sources(root)
    torch.manual_seed(3)
    batch = data.sample(2, 8)
    other = batch.clone()
    other["pixels"][1] = 255 - other["pixels"][1]  # only source 1's frames differ
    results = []
    for b in (batch, other):
        trainer = _trainer("ensemble", data, seed=4)
        torch.manual_seed(5)
        metrics = trainer.update(b)
        results.append((_weights(trainer), metrics))
    (w_a, m_a), (w_b, m_b) = results
    assert not _changed(w_a[0], w_b[0])  # model 0 saw the same source-0 slice
    assert _changed(w_a[1], w_b[1])
    assert m_a[f"loss_model_reco/{TASKS[0]}"] == m_b[f"loss_model_reco/{TASKS[0]}"]
    assert m_a[f"loss_model_reco/{TASKS[1]}"] != m_b[f"loss_model_reco/{TASKS[1]}"]


def test_ensemble_trainer_checkpoint_loads_as_a_teacher_bank(root, tmp_path):
    data = open_sources(root)
    trainer = _trainer("ensemble", data)
    trainer.update(data.sample(2, 8))
    path = tmp_path / "teachers.pt"
    torch.save(trainer.checkpoint(steps=1), path)
    bank = TeacherBank.from_checkpoint(path, sample=False)
    assert bank.layout == "ensemble" and bank.source_tasks == TASKS and bank.action_dim == 2
    batch = data.sample(1, 8)
    features = bank.source_features(batch["pixels"], batch["prev_action"], batch["is_first"])
    for i, model in enumerate(trainer.models):
        with torch.no_grad():
            ref = model.compute(batch["pixels"][i], batch["prev_action"][i], batch["is_first"][i],
                                decode=False, sample=False)["feature"]
        torch.testing.assert_close(features[i], ref, rtol=1e-4, atol=1e-4)


def test_cli_writes_teacher_checkpoint_previews_and_per_source_metrics(root, mixture_run):
    run, stdout = mixture_run
    assert "4 gradient steps" in stdout
    bank = TeacherBank.from_checkpoint(run / "teachers.pt", sample=False)
    assert bank.layout == "mixture" and bank.source_tasks == TASKS and bank.action_dim == 2
    meta = bank.metadata
    assert meta["steps"] == 4 and meta["image_size"] == 64 and meta["data_root"] == str(root.resolve())
    assert set(meta["manifests"]) == set(TASKS) and meta["source_action_dims"] == dict(zip(TASKS, (1, 2)))
    assert meta["manifests"]["reacher-easy"]["task"] == "dmc/reacher-easy"
    # the collect CLI recorded env.render_quality's default, pretraining carried it into the checkpoint
    assert meta["render_quality"] == "fast" and meta["manifests"]["reacher-easy"]["render_quality"] == "fast"
    batch = open_sources(root).sample(1, 8)
    narrow = bank.teacher_features(batch["pixels"][0], batch["prev_action"][0, ..., :1], batch["is_first"][0])
    assert narrow.shape == (2, 1, 8, bank.feature_dim) and torch.isfinite(narrow).all()
    for task in TASKS:
        for step in (2, 4):
            png = run / "open_loop" / f"{task}_step{step:07d}.png"
            assert png.read_bytes()[:4] == b"\x89PNG", png
    scalars = run / "metrics" / "scalars" / "train"
    assert [s for s, _ in _csv(scalars / "loss_model_reco.csv")] == [2, 4]
    for key in ("loss_model_reco", "loss_model_kl", "kl"):
        for task in TASKS:
            rows = _csv(scalars / key / f"{task}.csv")
            assert [s for s, _ in rows] == [2, 4] and all(v == v for _, v in rows), (key, task)


def test_cli_resumes_and_refuses_another_layout(root, mixture_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(mixture_run[0], run)
    before = torch.load(run / "teachers.pt", weights_only=True)
    _cli("vid2act.agents.pretrain", f"data={root}", *PRETRAIN, "steps=6", "resume=true", f"out_dir={run}",
         cwd=tmp_path)
    after = torch.load(run / "teachers.pt", weights_only=True)
    assert before["steps"] == 4 and after["steps"] == 6
    assert any(not torch.equal(before["weights"][k], after["weights"][k]) for k in before["weights"])
    assert (run / "open_loop" / f"{TASKS[0]}_step0000006.png").exists()
    assert [s for s, _ in _csv(run / "metrics" / "scalars" / "train" / "loss_model_reco.csv")][-1] == 6
    proc = _cli("vid2act.agents.pretrain", f"data={root}", *PRETRAIN, "layout=ensemble", "steps=8", "resume=true",
                f"out_dir={run}", cwd=tmp_path, ok=False)
    assert "layout: checkpoint has 'mixture', expected 'ensemble'" in proc.stderr
    assert torch.load(run / "teachers.pt", weights_only=True)["steps"] == 6  # the checkpoint is kept


# ---------------------------------------------------------------------------- render_quality
def _synthetic_sources(base, qualities):
    """64x64 random-frame datasets ``src-<i>`` of the given render qualities (one 12-step episode each)."""
    from tensordict import TensorDict

    for i, quality in enumerate(qualities):
        g = torch.Generator().manual_seed(i)
        rows = 13
        position = torch.arange(rows).unsqueeze(-1)
        action = torch.rand(rows, 2, generator=g) * 2 - 1
        action[0] = 0
        ds = OfflineDataset.create(base / f"src-{i}", task=f"dmc/src-{i}", action_dim=2, behaviour_policy="random",
                                   render_quality=quality)
        ds.append_episode(TensorDict({
            "pixels": torch.randint(0, 256, (rows, 3, 64, 64), dtype=torch.uint8, generator=g),
            "prev_action": action, "reward": torch.zeros(rows, 1), "is_first": position == 0,
            "is_last": position == rows - 1, "is_terminal": torch.zeros(rows, 1, dtype=torch.bool),
            "success": torch.zeros(rows, 1, dtype=torch.bool),
        }, [rows]))
    return base


def _pretrain_cfg(data, *overrides):
    from hydra import compose, initialize_config_module

    from vid2act.agents.schemas import register_configs

    register_configs()
    with initialize_config_module("vid2act.configs", version_base="1.3"):
        return compose("pretrain", overrides=[f"data={data}", "model=tiny", "logger=csv", "steps=1", "batch_size=1",
                                              "seq_len=6", "log_every=1", "checkpoint_every=0", "preview_sequences=0",
                                              "progress=false", "device=cpu", *overrides])


def test_sources_of_mixed_render_quality_are_refused(tmp_path):
    root = _synthetic_sources(tmp_path / "data", ["fast", "full"])
    with pytest.raises(ValueError) as info:
        open_sources(root)
    message = str(info.value)
    assert "\n" not in message and "src-0: fast" in message and "src-1: full" in message
    assert "sources=[...]" in message and "env.render_quality=" in message
    assert open_sources(root, sources=["src-1"]).render_quality == "full"
    from vid2act.agents.pretrain import run_pretraining

    with pytest.raises(ValueError, match="mix render qualities"):
        run_pretraining(_pretrain_cfg(root), tmp_path / "run")
    assert not (tmp_path / "run" / "teachers.pt").exists()


def test_teacher_checkpoint_records_render_quality_and_resume_checks_it(tmp_path):
    from vid2act.agents.checkpoint import CheckpointError
    from vid2act.agents.pretrain import run_pretraining, teacher_render_quality

    fast = _synthetic_sources(tmp_path / "fast", ["fast", "fast"])
    run = tmp_path / "run"
    run_pretraining(_pretrain_cfg(fast), run)
    state = torch.load(run / "teachers.pt", weights_only=True)
    assert state["render_quality"] == "fast" and teacher_render_quality(state) == "fast"
    assert TeacherBank.from_checkpoint(run / "teachers.pt").metadata["render_quality"] == "fast"
    assert teacher_render_quality({}) == "full"  # checkpoints written before the field
    full = _synthetic_sources(tmp_path / "full", ["full", "full"])
    with pytest.raises(CheckpointError, match="render_quality='fast' frames, the sources under .* are 'full'"):
        run_pretraining(_pretrain_cfg(full, "resume=true", "steps=2"), run)
    assert torch.load(run / "teachers.pt", weights_only=True)["steps"] == 1


def test_pretrain_killed_and_resumed_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    from vid2act.agents import pretrain as pretrain_module
    from vid2act.agents.pretrain import run_pretraining

    data = _synthetic_sources(tmp_path / "data", ["fast", "fast"])
    common = ("steps=6", "checkpoint_every=2", "preview_sequences=1", "preview_length=6", "preview_context=2")
    run_pretraining(_pretrain_cfg(data, *common), tmp_path / "whole")

    real_update, calls = pretrain_module.TeacherTrainer.update, {"n": 0}

    def killed_at_step_5(self, batch, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # stands for a kill after the checkpoint at step 4
        return real_update(self, batch, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module.TeacherTrainer, "update", killed_at_step_5)
        with pytest.raises(KeyboardInterrupt):
            run_pretraining(_pretrain_cfg(data, *common), tmp_path / "killed")
    assert torch.load(tmp_path / "killed" / "teachers.pt", weights_only=True)["steps"] == 4
    run_pretraining(_pretrain_cfg(data, *common, "resume=true"), tmp_path / "killed")
    whole = torch.load(tmp_path / "whole" / "teachers.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "teachers.pt", weights_only=True)
    assert whole["steps"] == resumed["steps"] == 6
    for key, value in whole["weights"].items():
        assert torch.equal(value, resumed["weights"][key]), key
    steps = [s for s, _ in _csv(tmp_path / "killed" / "metrics" / "scalars" / "train" / "loss_model_reco.csv")]
    assert steps == list(range(1, 7))  # the rows of step 5 (logged before the kill) are not doubled
