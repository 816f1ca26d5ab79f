"""Checkpoints and run configs written before ``model.gru`` / ``agent.first_row_is_first`` existed load
as what they were (``gru="torch"``, ``first_row_is_first=False``): teachers, train runs (evaluate and
resume) and pretrain resumes."""

import dataclasses
import json

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from vid2act.agents.checkpoint import CheckpointError, check_meta, load_checkpoint, save_checkpoint, upgrade_meta
from vid2act.agents.dreamer import DreamerAgent, world_model_config
from vid2act.agents.evaluate import evaluate_run, upgrade_run_config
from vid2act.agents.schemas import register_configs
from vid2act.agents.train import build_agent, resume_options, run_meta
from vid2act.components.transfer.teacher_bank import TeacherBank, teacher_checkpoint
from vid2act.components.world_model import LayerNormGRUCell, WorldModelConfig

register_configs()
A, N = 1, 2  # dmc/cartpole-balance has one action


def _compose(name="train", overrides=()):
    base = ["env=dmc/cartpole-balance", "model=tiny", "logger=csv"] if name == "train" else []
    with initialize_config_module("vid2act.configs", version_base="1.3"):
        return compose(name, overrides=base + list(overrides))


def _old_run(tmp_path):
    """A train run folder as the code before the options wrote it: no ``gru`` / ``first_row_is_first``."""
    content = OmegaConf.to_container(_compose(overrides=["env.max_episode_steps=5"]), resolve=True)
    del content["model"]["gru"], content["agent"]["first_row_is_first"]
    old_cfg = OmegaConf.create(content)
    torch.manual_seed(0)
    agent = DreamerAgent(WorldModelConfig.from_preset("tiny", gru="torch"), A, horizon=3)
    meta = run_meta(old_cfg, A)
    assert "gru" not in meta["model"] and "first_row_is_first" not in meta["agent_config"]
    save_checkpoint(tmp_path / "checkpoint.pt", {"agent": agent.state_dict(), "env_steps": 10, "updates": 2, "meta": meta})
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(old_cfg))
    return agent


def test_upgrade_meta_fills_only_missing_options():
    old = {"env": "dmc/x", "model": {"preset": "tiny"}, "agent_config": {"name": "dreamerv2"},
           "model_config": {"belief_dim": 8}}
    new = upgrade_meta(old)
    assert new["model"] == {"preset": "tiny", "gru": "torch"} and new["model_config"]["gru"] == "torch"
    assert new["agent_config"] == {"name": "dreamerv2", "first_row_is_first": False} and new["env"] == "dmc/x"
    assert "gru" not in old["model"]  # not changed in place
    kept = upgrade_meta({"model": {"preset": "tiny", "gru": None}, "agent_config": {"first_row_is_first": True}})
    assert kept["model"]["gru"] is None and kept["agent_config"]["first_row_is_first"] is True
    assert world_model_config(_compose().model).gru == "layer_norm"  # unset in a new run: the preset's


def test_old_teacher_checkpoint_loads_as_torch_gru(tmp_path):
    torch.manual_seed(0)
    teacher = WorldModelConfig.from_preset("tiny", gru="torch").build(action_dim=A, label_dim=N, reward_head=False)
    state = teacher_checkpoint(teacher, layout="mixture", source_tasks=["a", "b"], action_dim=A)
    del state["model_config"]["gru"]
    torch.save(state, tmp_path / "teachers.pt")
    bank = TeacherBank.from_checkpoint(tmp_path / "teachers.pt", sample=False)
    assert bank.config.gru == "torch" and type(bank.model.rssm.prior_net.rnn) is nn.GRUCell
    for key, value in teacher.state_dict().items():
        assert torch.equal(bank.model.state_dict()[key], value), key


def test_old_run_is_evaluated_with_its_torch_gru(tmp_path):
    old = _old_run(tmp_path)
    cfg = upgrade_run_config(OmegaConf.load(tmp_path / "config.yaml"))
    assert cfg.model.gru == "torch" and cfg.agent.first_row_is_first is False
    agent = build_agent(cfg, A, 64, torch.device("cpu"))
    assert type(agent.world_model.rssm.prior_net.rnn) is nn.GRUCell
    state = load_checkpoint(tmp_path / "checkpoint.pt", expect=run_meta(cfg, A))
    agent.load_state_dict(state["agent"])
    for (name, p), q in zip(agent.named_parameters(), old.parameters()):
        assert torch.equal(p, q), name
    result = evaluate_run(tmp_path, episodes=1, video=False)  # the whole CLI path on a 5-step episode
    assert result["updates"] == 2 and result["lengths"] == [5]
    assert json.loads((tmp_path / f"eval_{result['env_frames']:08d}.json").read_text()) == result


def test_old_run_resumes_with_its_torch_gru(tmp_path):
    _old_run(tmp_path)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    cfg = _compose(overrides=["env.max_episode_steps=5"])  # the same command line, new code: gru unset
    with pytest.raises(CheckpointError, match="model"):  # the plain check would refuse the old run...
        check_meta(saved, run_meta(cfg, A))
    resumed = resume_options(cfg, saved["meta"])  # ...an unset gru takes the checkpoint's instead
    assert resumed.model.gru == "torch" and cfg.model.gru is None
    check_meta(saved, run_meta(resumed, A))
    build_agent(resumed, A, 64, torch.device("cpu")).load_state_dict(saved["agent"])
    # a gru given on the command line is kept, and refused if it is not the checkpoint's
    explicit = _compose(overrides=["env.max_episode_steps=5", "model.gru=layer_norm"])
    assert resume_options(explicit, saved["meta"]) is explicit
    with pytest.raises(CheckpointError, match="gru"):
        check_meta(saved, run_meta(explicit, A))
    # as is an agent option the old run did not have
    with pytest.raises(CheckpointError, match="agent_config"):
        check_meta(saved, run_meta(resume_options(_compose(overrides=[
            "env.max_episode_steps=5", "agent.first_row_is_first=true"]), saved["meta"]), A))


def test_old_pretrain_checkpoint_resumes_with_its_torch_gru(tmp_path):
    from vid2act.agents.pretrain import _resumed_gru

    old = dataclasses.asdict(WorldModelConfig.from_preset("tiny", gru="torch"))
    del old["gru"]
    save_checkpoint(tmp_path / "teachers.pt", {"meta": {"model_config": old}})
    fresh = world_model_config(_compose("pretrain", ["data=x", "model=tiny"]).model)
    assert fresh.gru == "layer_norm"
    resumed = _resumed_gru(fresh, tmp_path / "teachers.pt")
    assert resumed == dataclasses.replace(fresh, gru="torch")
    check_meta(load_checkpoint(tmp_path / "teachers.pt"), {"model_config": dataclasses.asdict(resumed)})


def test_agent_options_reach_the_agent():
    cfg = _compose(overrides=["agent.first_row_is_first=true", "model.gru=torch"])
    agent = build_agent(cfg, A, 64, torch.device("cpu"))
    assert agent.first_row_is_first and type(agent.world_model.rssm.prior_net.rnn) is nn.GRUCell
    agent = build_agent(_compose(), A, 64, torch.device("cpu"))
    assert not agent.first_row_is_first and isinstance(agent.world_model.rssm.prior_net.rnn, LayerNormGRUCell)


def test_relative_teacher_path_in_old_checkpoint_matches_the_absolute_config(tmp_path, monkeypatch):
    """A checkpoint whose meta holds the teacher path as typed (relative) restores against ``config.yaml``'s
    absolute path of the same file; another file is still refused, naming the key."""
    from vid2act.agents.train import saved_teacher_matches

    monkeypatch.chdir(tmp_path)
    cfg = _compose(overrides=["teacher=results/teachers_12k/teachers.pt"])
    meta = run_meta(cfg, A)
    assert meta["teacher"] == str(tmp_path / "results/teachers_12k/teachers.pt")  # absolute, as config.yaml
    old = {"meta": {**meta, "teacher": "results/teachers_12k/teachers.pt"}}
    check_meta(old, saved_teacher_matches(old["meta"], meta))
    with pytest.raises(CheckpointError, match="teacher: checkpoint has 'results/teachers_12k/teachers.pt'"):
        check_meta(old, run_meta(cfg, A))  # what restore_run compared before
    for other in ("results/teachers_6k/teachers.pt", "/elsewhere/results/teachers_12k/teachers.pt"):
        other_meta = {**meta, "teacher": other}
        with pytest.raises(CheckpointError, match="teacher: checkpoint has"):
            check_meta({"meta": other_meta}, saved_teacher_matches(other_meta, meta))
