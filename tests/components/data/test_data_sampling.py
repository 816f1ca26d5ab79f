"""Sequence sampling with TorchRL's SliceSampler: [B, T] batches that never cross episodes."""

import pytest
import torch

from vid2act.components.data import OfflineDataset, SequenceReplayBuffer
from torchrl.data import TensorDictReplayBuffer


@pytest.fixture
def dataset(tmp_path, make_episode):
    ds = OfflineDataset.create(tmp_path / "ds", task="dmc/walker-walk", action_dim=4, image_size=8,
                               behaviour_policy="random")
    # lengths in rows: 9, 3 (too short for T=5), 6, 12, 5
    for seed, steps in enumerate([8, 2, 5, 11, 4]):
        ds.append_episode(make_episode(steps, seed=seed))
    return ds


def _check_batch(batch, B, T):
    assert batch.batch_size == torch.Size([B, T])
    episode = batch["episode"]
    assert (episode == episode[:, :1]).all(), "a sequence crossed an episode boundary"
    position = batch["reward"][..., 0]  # reward[t] == t within each synthetic episode
    assert (position[:, 1:] - position[:, :-1] == 1).all(), "rows are not contiguous"
    is_first = batch["is_first"][..., 0]
    assert not is_first[:, 1:].any(), "is_first inside a sequence"
    assert torch.equal(is_first[:, 0], position[:, 0] == 0)
    assert not batch["is_last"][:, :-1, 0].any()
    index = batch["index"][..., 0]
    assert (index[:, 1:] - index[:, :-1] == 1).all()


def test_sequences_never_cross_episodes(dataset):
    B, T = 16, 5
    buffer = dataset.replay_buffer(B, T)
    assert isinstance(buffer, TensorDictReplayBuffer) and isinstance(buffer, SequenceReplayBuffer)
    rows = dataset.load()
    seen = set()
    for _ in range(60):
        batch = buffer.sample()
        _check_batch(batch, B, T)
        # the sampled rows are the stored rows at those indices
        assert torch.equal(batch["pixels"], rows["pixels"][batch["index"][..., 0]])
        seen |= set(batch["episode"][:, 0].tolist())
    assert seen == {0, 2, 3, 4}  # episode 1 (3 rows) is shorter than T and never sampled


def test_full_length_sequences_start_at_first_row(dataset):
    batch = dataset.replay_buffer(16, 12).sample()
    _check_batch(batch, 16, 12)
    assert (batch["episode"] == 3).all()
    assert batch["is_first"][:, 0].all() and batch["is_last"][:, -1].all()


def test_iteration_prefetch_and_device(dataset):
    buffer = dataset.replay_buffer(4, 3, prefetch=2, device="cpu")
    for _, batch in zip(range(5), buffer):
        _check_batch(batch, 4, 3)
    assert batch["pixels"].dtype == torch.uint8 and batch.device == torch.device("cpu")


def test_no_episode_long_enough(dataset):
    with pytest.raises(ValueError, match=r"no episode has seq_len=13 rows \(longest: 12 rows in 5 episodes\)"):
        dataset.replay_buffer(4, 13)


@pytest.mark.parametrize("batch_size, seq_len", [(0, 5), (4, 0), (2.0, 5), (True, 5)])
def test_bad_sizes(dataset, batch_size, seq_len):
    with pytest.raises(ValueError, match="must be a positive int"):
        dataset.replay_buffer(batch_size, seq_len)
