"""Every Hydra config composes against its typed schema; typos are rejected with the key's path."""

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from vid2act.agents.cli import check_env_overrides
from vid2act.agents.schemas import register_configs

register_configs()


def _compose(name, overrides=()):
    with initialize_config_module(config_module="vid2act.configs", version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


def test_collect_config_composes_with_any_task():
    cfg = _compose("collect", ["env=dmc/walker-walk", "policy=random", "episodes=3"])
    assert cfg.env.name == "dmc/walker-walk" and cfg.episodes == 3
    assert cfg.out == "data/dmc/walker-walk"


@pytest.mark.parametrize("model", ["tiny", "small", "paper", "official", "cpu"])
def test_train_config_composes_for_every_model_preset(model):
    cfg = _compose("train", [f"model={model}", "env=metaworld/button-press", "logger=csv"])
    assert cfg.model.preset == model and cfg.agent.name == "dreamerv2" and cfg.logger.wandb is False


def test_typo_in_a_key_is_rejected():
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        _compose("train", ["agent.horizn=10"])


def test_wrong_type_is_rejected():
    with pytest.raises((ConfigCompositionException, ValidationError)):
        _compose("train", ["env_steps=lots"])


def test_unknown_env_lists_close_names():
    with pytest.raises(SystemExit, match="dmc/walker-walk"):
        check_env_overrides(["env=dmc/walker-wlak"])
    check_env_overrides(["env=metaworld/door-close", "episodes=2"])  # valid: no error


@pytest.mark.parametrize("experiment", ["metaworld_paper", "dmc_paper"])
def test_paper_experiments_compose_with_their_sweeps(experiment):
    with initialize_config_module(config_module="vid2act.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
        teacher = compose(config_name="pretrain", overrides=[f"experiment={experiment}_teacher"])
    assert cfg.model.preset == "paper" and cfg.batch_size == 50 and cfg.seq_len == 50 and cfg.train_ratio == 0.2
    sweep = cfg.hydra.sweeper.params
    assert set(sweep.agent.split(",")) == {"vid2act", "dreamerv2", "finetune", "uniform_weights", "no_guidance"}
    assert sweep.seed == "0,1,2" and len(sweep.env.split(",")) == (6 if experiment == "metaworld_paper" else 2)
    assert teacher.model.preset == "paper" and teacher.steps == 200_000 and cfg.teacher.startswith(teacher.out_dir)
    for env in sweep.env.split(","):  # every target exists
        _compose("train", [f"env={env}"])


@pytest.mark.parametrize("name, overrides", [("quickstart", []), ("report", ["runs=x"])])
def test_quickstart_and_report_configs_compose(name, overrides):
    cfg = _compose(name, overrides)
    assert cfg is not None


def test_cpu_walker_experiment_composes_with_the_cpu_preset():
    cfg = _compose("train", ["experiment=dmc_cpu_walker"])
    assert cfg.model.preset == "cpu" and cfg.env.name == "dmc/walker-stand" and cfg.env.render_quality == "fast"
    assert cfg.agent.free_nats == 0.4 and cfg.agent.actor_dist == "tanh_normal" and cfg.logger.wandb is False
    assert (cfg.env_steps, cfg.batch_size, cfg.seq_len, cfg.torch_threads) == (50_000, 16, 32, 1)


def test_cpu_transfer_experiments_compose_with_their_sweep():
    with initialize_config_module(config_module="vid2act.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=metaworld_cpu"], return_hydra_config=True)
        teacher = compose(config_name="pretrain", overrides=["experiment=metaworld_cpu_teacher"])
        baseline = compose(config_name="train", overrides=["experiment=metaworld_cpu", "agent=dreamerv2"])
    assert cfg.model.preset == teacher.model.preset == "cpu" and cfg.agent.name == "vid2act"
    assert cfg.teacher.startswith(teacher.out_dir) and cfg.eval_episodes == 10 and cfg.torch_threads == 1
    assert teacher.sources == ["door-close", "faucet-open", "handle-press", "plate-slide", "reach-wall", "window-close"]
    # the baseline keeps every shared learner setting of the experiment
    assert baseline.agent.name == "dreamerv2" and baseline.agent.free_nats == cfg.agent.free_nats == 0.4
    assert (baseline.env_steps, baseline.batch_size, baseline.seq_len) == (cfg.env_steps, cfg.batch_size, cfg.seq_len)
    sweep = cfg.hydra.sweeper.params
    assert set(sweep.agent.split(",")) == {"vid2act", "dreamerv2"} and sweep.seed == "0,1,2"
    for env in sweep.env.split(","):  # every target exists and is not a source
        assert _compose("train", [f"env={env}"]).env.name.split("/")[1] not in teacher.sources


def test_paper_sources_teacher_experiment_changes_only_the_sources_and_their_folders():
    base = _compose("pretrain", ["experiment=metaworld_cpu_teacher"])
    paper = _compose("pretrain", ["experiment=metaworld_cpu_teacher_paper_sources"])
    assert paper.sources == ["button-press-topdown", "door-open", "drawer-close", "peg-insert-side", "pick-place", "push"]
    assert paper.data != base.data and paper.out_dir != base.out_dir
    changed = {k for k in base if base[k] != paper[k]}
    assert changed == {"sources", "data", "out_dir"}
    for task in paper.sources:  # every source is a Meta-World task the env registry knows
        assert _compose("collect", [f"env=metaworld/{task}"]).env.name == f"metaworld/{task}"
