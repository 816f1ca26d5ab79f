"""``vid2act.agents.diagnose``: replay windows and clear errors (the whole diagnosis runs in test_transfer_cli)."""

import pytest
import torch
from tensordict import TensorDict

from vid2act.agents.diagnose import diagnose_run, replay_windows
from vid2act.components.data.offline_dataset import OfflineDataset


def _store(path, lengths):
    store = OfflineDataset.create(path, task="dmc/walker-walk", action_dim=2, image_size=8, behaviour_policy="random")
    for episode, rows in enumerate(lengths):
        position = torch.arange(rows).unsqueeze(-1)
        store.append_episode(TensorDict({
            "pixels": torch.full((rows, 3, 8, 8), episode, dtype=torch.uint8),
            "prev_action": position.float().expand(rows, 2) / 100,
            "reward": position.float(), "is_first": position == 0, "is_last": position == rows - 1,
            "is_terminal": torch.zeros(rows, 1, dtype=torch.bool), "success": torch.zeros(rows, 1, dtype=torch.bool),
        }, [rows]))
    return store


def test_windows_come_from_the_newest_episodes_and_start_an_episode(tmp_path):
    _store(tmp_path / "replay", [30, 20, 25, 40])
    batch = replay_windows(tmp_path / "replay", sequences=3, seq_len=10, seed=1)
    assert batch.shape == (3, 10) and batch["pixels"].dtype == torch.uint8
    assert batch["pixels"][:, 0, 0, 0, 0].tolist() == [3, 2, 1]  # episodes 3, 2, 1: newest first
    steps = batch["prev_action"][..., 0] * 100  # the row's position in its episode
    torch.testing.assert_close(steps.diff(dim=1), torch.ones(3, 9))  # contiguous rows of one episode
    assert batch["is_first"][:, 0].all() and not batch["is_first"][:, 1:].any()
    again = replay_windows(tmp_path / "replay", sequences=3, seq_len=10, seed=1)
    assert torch.equal(again["prev_action"], batch["prev_action"])  # the seed fixes the starts


def test_bad_windows_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no replay store"):
        replay_windows(tmp_path, sequences=1, seq_len=5)
    _store(tmp_path / "replay", [30, 6])
    with pytest.raises(ValueError, match="fewer than sequences=3"):
        replay_windows(tmp_path / "replay", sequences=3, seq_len=5)
    with pytest.raises(ValueError, match="episode 1 has 6 rows, fewer than seq_len=10"):
        replay_windows(tmp_path / "replay", sequences=2, seq_len=10)
    with pytest.raises(ValueError, match="seq_len >= 2"):
        replay_windows(tmp_path / "replay", sequences=1, seq_len=1)


def test_a_run_without_config_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.yaml not found"):
        diagnose_run(tmp_path)


def test_windows_from_another_env_or_without_replay_are_clear_errors(tmp_path):
    from omegaconf import OmegaConf

    for name, env in (("run", "metaworld/door-lock"), ("other", "metaworld/drawer-open")):
        (tmp_path / name).mkdir()
        OmegaConf.save({"env": {"name": env}, "agent": {"name": "dreamerv2"}, "seed": 0}, tmp_path / name / "config.yaml")
    with pytest.raises(FileNotFoundError, match="no replay store"):
        diagnose_run(tmp_path / "run", windows_from=tmp_path / "other")
    _store(tmp_path / "other" / "replay", [30])
    with pytest.raises(ValueError, match="is a run of metaworld/drawer-open.*pass a run of the same env"):
        diagnose_run(tmp_path / "run", windows_from=tmp_path / "other")


def test_windows_from_a_knob_run_get_a_file_safe_tag_and_a_readable_label(tmp_path):
    from omegaconf import OmegaConf

    from vid2act.agents.diagnose import _windows_tag

    for name, agent in (("run", {"name": "dreamerv2"}), ("knob", {"name": "vid2act", "alpha": 0.0026})):
        (tmp_path / name).mkdir()
        OmegaConf.save({"env": {"name": "metaworld/door-lock"}, "agent": agent, "seed": 2}, tmp_path / name / "config.yaml")
    assert _windows_tag(tmp_path / "run", tmp_path / "knob") == ("vid2act-alpha=0.0026-_seed2", "vid2act[alpha=0.0026] seed 2")
    OmegaConf.save({"env": {"name": "metaworld/door-lock"}, "agent": {"name": "vid2act"}, "seed": 2,
                    "teacher": "results/teachers_12k/teachers.pt"}, tmp_path / "knob" / "config.yaml")
    assert _windows_tag(tmp_path / "run", tmp_path / "knob") == ("vid2act@teachers_12k_seed2", "vid2act@teachers_12k seed 2")
    (tmp_path / "bare").mkdir()  # no config: the folder name for both
    assert _windows_tag(tmp_path / "run", tmp_path / "bare") == ("bare", "bare")
