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


@pytest.mark.parametrize("stored, expected", [(None, "full"), ("fast", "fast"), ("full", "full")])
def test_the_env_renders_at_the_run_configs_render_quality(tmp_path, monkeypatch, stored, expected):
    """``env.render_quality`` comes from config.yaml; a config written before the option means "full"."""
    from hydra import compose, initialize_config_module

    import vid2act.envs
    from vid2act.agents.schemas import register_configs

    register_configs()
    with initialize_config_module("vid2act.configs", version_base="1.3"):
        cfg = compose("train", overrides=["env=dmc/cartpole-balance", "model=tiny", "logger=csv"])
    content = OmegaConf.to_container(cfg, resolve=True)
    if stored is None:
        del content["env"]["render_quality"]
    else:
        content["env"]["render_quality"] = stored
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(content))
    (tmp_path / "checkpoint.pt").write_bytes(b"")  # never read: the env is made first
    seen = {}

    class Made(Exception):
        pass

    def fake_make_env(task, **kwargs):
        seen.update(kwargs, task=task)
        raise Made

    monkeypatch.setattr(vid2act.envs, "make_env", fake_make_env)
    with pytest.raises(Made):
        evaluate_run(tmp_path, episodes=1, video=False)
    assert seen["task"] == "dmc/cartpole-balance" and seen["render_quality"] == expected
