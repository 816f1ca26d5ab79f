"""``vid2act.agents.evaluate``: clear errors before any work (the happy path runs in test_cli_smoke)."""

import pytest
from omegaconf import OmegaConf

from vid2act.agents.checkpoint import CheckpointError
from vid2act.agents.evaluate import evaluate_run


def test_run_without_config_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.yaml not found"):
        evaluate_run(tmp_path)


def test_non_positive_episodes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="episodes must be positive"):
        evaluate_run(tmp_path, episodes=0)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    from hydra import compose, initialize_config_module

    from vid2act.agents.schemas import register_configs

    register_configs()
    with initialize_config_module("vid2act.configs", version_base="1.3"):
        cfg = compose("train", overrides=["env=dmc/cartpole-balance", "model=tiny", "logger=csv"])
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        evaluate_run(tmp_path, episodes=1, video=False)
    assert not list(tmp_path.glob("eval_*.json"))
