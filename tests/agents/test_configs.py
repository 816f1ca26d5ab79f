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


@pytest.mark.parametrize("model", ["tiny", "small", "paper"])
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
