"""rollout_to_rows (TorchRL transitions -> Dreamer rows) and pad_action_dim."""

import pytest
import torch
from tensordict import TensorDict

from vid2act.components.data import OfflineDataset, pad_action_dim, rollout_to_rows


def _rollout(steps=3, *, done_at=None, with_success=True):
    """A hand-built rollout: frame k has every pixel equal to k, action k is [k+1, -(k+1)]."""
    frames = torch.arange(steps + 1, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 64, 64)
    done = torch.zeros(steps, 1, dtype=torch.bool)
    if done_at is not None:
        done[done_at] = True
    data = {
        "pixels": frames[:-1].clone(),
        "action": torch.stack([torch.arange(1.0, steps + 1), -torch.arange(1.0, steps + 1)], -1),
        "done": torch.zeros(steps, 1, dtype=torch.bool),
        "next": {
            "pixels": frames[1:].clone(),
            "reward": torch.arange(10.0, 10.0 + steps).unsqueeze(-1),
            "done": done,
            "terminated": done.clone(),
        },
        ("collector", "traj_ids"): torch.zeros(steps, dtype=torch.int64),
    }
    if with_success:
        data["next", "success"] = torch.tensor([[False], [True], [False]])[:steps]
    return TensorDict(data, [steps])


def test_rollout_to_rows_mapping():
    rows = rollout_to_rows(_rollout(done_at=2))
    assert rows.batch_size == torch.Size([4])
    assert set(rows.keys()) == {
        "pixels", "prev_action", "reward", "is_first", "is_last", "is_terminal", "success", "episode"
    }
    assert rows["pixels"].dtype == torch.uint8
    assert rows["pixels"][:, 0, 0, 0].tolist() == [0, 1, 2, 3]  # o_0 .. o_3
    assert rows["prev_action"].tolist() == [[0, 0], [1, -1], [2, -2], [3, -3]]  # a_{t-1}
    assert rows["reward"].flatten().tolist() == [0, 10, 11, 12]
    assert rows["is_first"].flatten().tolist() == [True, False, False, False]
    assert rows["is_last"].flatten().tolist() == [False, False, False, True]
    assert rows["is_terminal"].flatten().tolist() == [False, False, False, True]
    assert rows["success"].flatten().tolist() == [False, False, True, False]


def test_rollout_cut_short_is_a_truncation_and_success_optional():
    rows = rollout_to_rows(_rollout(done_at=None, with_success=False))
    assert rows["is_last"].flatten().tolist() == [False, False, False, True]
    assert not rows["is_terminal"].any()
    assert not rows["success"].any()


def test_rollout_rows_append_to_dataset(tmp_path):
    ds = OfflineDataset.create(tmp_path / "ds", task="dmc/cheetah-run", action_dim=2, behaviour_policy="random")
    ds.append_episode(rollout_to_rows(_rollout(done_at=2)))
    record = ds.manifest["episode_records"][0]
    assert set(record.pop("checksums")) >= {"pixels.memmap", "prev_action.memmap", "reward.memmap"}
    assert record == {
        "id": 0, "path": "episodes/000000", "length": 4, "return": 33.0, "success": True, "action_dim": 2
    }


def test_rollout_errors():
    with pytest.raises(ValueError, match="done at steps"):
        rollout_to_rows(_rollout(done_at=1))
    with pytest.raises(ValueError, match="misses keys"):
        rollout_to_rows(_rollout().exclude(("next", "terminated")))
    with pytest.raises(ValueError, match="batch shape"):
        rollout_to_rows(_rollout().unsqueeze(0))
    with pytest.raises(TypeError, match="TensorDict"):
        rollout_to_rows({"pixels": torch.zeros(3)})


def test_pad_action_dim():
    rows = TensorDict({"prev_action": torch.ones(2, 5, 3)}, [2, 5])
    padded = pad_action_dim(rows, 6)
    assert padded["prev_action"].shape == (2, 5, 6)
    assert torch.all(padded["prev_action"][..., :3] == 1) and torch.all(padded["prev_action"][..., 3:] == 0)
    assert rows["prev_action"].shape == (2, 5, 3)  # input untouched
    assert pad_action_dim(rows, 3) is rows
    with pytest.raises(ValueError, match="dimension 3 to action_dim=2"):
        pad_action_dim(rows, 2)
