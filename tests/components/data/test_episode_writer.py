"""EpisodeWriter cuts collector batches into whole episodes; the online buffer samples within them."""

import pytest
import torch
from tensordict import TensorDict

from vid2act.components.data.episode_writer import EpisodeWriter, make_online_buffer


def _batch(workers, steps, done_at, start_value=0):
    """A fake collector batch [W, T]: pixels hold a per-step counter so rows can be traced back."""
    counter = torch.arange(start_value, start_value + steps).expand(workers, steps) + 1000 * torch.arange(workers)[:, None]
    done = torch.zeros(workers, steps, 1, dtype=torch.bool)
    for w, t in done_at:
        done[w, t] = True
    pix = lambda c: (c % 251).to(torch.uint8)[..., None, None, None].expand(workers, steps, 3, 64, 64).clone()
    return TensorDict(
        {
            "pixels": pix(counter),
            "action": counter.float()[..., None] / 1e4,
            "next": {"pixels": pix(counter + 1), "reward": torch.ones(workers, steps, 1), "done": done,
                     "terminated": torch.zeros_like(done)},
        },
        [workers, steps],
    )


def test_episodes_are_written_whole_and_per_worker():
    buffer = make_online_buffer(1000, batch_size=2, seq_len=3)
    writer = EpisodeWriter(buffer)
    # worker 0 ends an episode at t=3 and again at t=9 (spanning batches); worker 1 at t=7 of batch 2
    assert [e["length"] for e in writer.extend(_batch(2, 6, [(0, 3)]))] == [4.0]
    finished = writer.extend(_batch(2, 6, [(0, 3), (1, 1)], start_value=6))
    assert sorted(e["length"] for e in finished) == [6.0, 8.0]
    assert writer.next_episode_id == 3 and len(buffer) == (4 + 1) + (6 + 1) + (8 + 1)
    assert writer.rows_written == len(buffer)
    rows = buffer[:]
    for ep in rows["episode"].unique():
        ep_rows = rows[rows["episode"] == ep]
        assert ep_rows["is_first"][0] and not ep_rows["is_first"][1:].any()
        assert ep_rows["is_last"][-1] and torch.all(ep_rows["prev_action"][0] == 0)
        # actions are consecutive counters inside an episode: nothing from another worker got mixed in
        steps = (ep_rows["prev_action"][1:, 0] * 1e4).round()
        assert torch.all(steps.diff() == 1)


def test_sampled_sequences_stay_inside_episodes():
    buffer = make_online_buffer(1000, batch_size=8, seq_len=4)
    writer = EpisodeWriter(buffer)
    writer.extend(_batch(1, 30, [(0, 9), (0, 19), (0, 29)]))
    for _ in range(20):
        batch = buffer.sample()
        assert batch.shape == (8, 4)
        assert torch.all(batch["episode"] == batch["episode"][:, :1])
        assert not batch["is_first"][:, 1:].any()


def test_bad_inputs():
    with pytest.raises(ValueError, match="capacity"):
        make_online_buffer(2, batch_size=1, seq_len=4)
    writer = EpisodeWriter(make_online_buffer(10, 1, 2))
    with pytest.raises(ValueError, match="done"):
        writer.extend(TensorDict({"pixels": torch.zeros(3, 3, 64, 64, dtype=torch.uint8)}, [3]))


def _store(path):
    from vid2act.components.data import OfflineDataset

    return OfflineDataset.open_or_create(path, task="dmc/test", action_dim=1, image_size=64, behaviour_policy="online")


def test_store_gets_every_finished_episode_and_restore_rebuilds_the_same_ring_buffer(tmp_path):
    from vid2act.components.data import OfflineDataset
    from vid2act.components.data.episode_writer import restore_replay

    buffer = make_online_buffer(20, batch_size=2, seq_len=3)  # small ring: the oldest rows get overwritten
    writer = EpisodeWriter(buffer, store=_store(tmp_path / "replay"))
    writer.extend(_batch(1, 30, [(0, 5), (0, 11), (0, 17), (0, 23)]))
    assert writer.pending_steps == 6 and writer.store.episodes == 4 and writer.rows_written == 4 * 7
    checkpoint_episodes = 3  # as if the run was checkpointed after episode 2, then killed after episode 3
    writer.extend(_batch(1, 6, [(0, 5)], start_value=30))
    assert writer.pending_steps == 0 and writer.store.episodes == 5

    # what an uninterrupted run holds after its first 3 episodes
    expected_buffer = make_online_buffer(20, batch_size=2, seq_len=3)
    expected = EpisodeWriter(expected_buffer)
    expected.extend(_batch(1, 18, [(0, 5), (0, 11), (0, 17)]))

    resumed = EpisodeWriter(make_online_buffer(20, batch_size=2, seq_len=3),
                            store=OfflineDataset.open(tmp_path / "replay"))
    assert restore_replay(resumed, checkpoint_episodes) == 3 * 7
    assert resumed.store.episodes == 3 and resumed.next_episode_id == 3
    assert len(resumed.buffer) == len(expected_buffer) == 20
    for key in ("pixels", "prev_action", "reward", "episode", "is_first"):
        assert torch.equal(resumed.buffer[:][key], expected_buffer[:][key]), key
    writer = resumed  # and writing continues with episode id 3
    writer.extend(_batch(1, 6, [(0, 5)], start_value=50))
    assert writer.store.episodes == 4 and writer.store.manifest["episode_records"][-1]["id"] == 3


def test_restore_replay_refuses_missing_episodes_and_a_writer_without_store(tmp_path):
    from vid2act.components.data.episode_writer import restore_replay

    writer = EpisodeWriter(make_online_buffer(100, batch_size=2, seq_len=3), store=_store(tmp_path / "replay"))
    writer.extend(_batch(1, 6, [(0, 5)]))
    fresh = EpisodeWriter(make_online_buffer(100, batch_size=2, seq_len=3), store=writer.store)
    with pytest.raises(ValueError, match="holds 1 episodes but the checkpoint covers 2"):
        restore_replay(fresh, 2)
    with pytest.raises(ValueError, match="needs an empty buffer"):
        restore_replay(writer, 1)
    with pytest.raises(ValueError, match="with a store"):
        restore_replay(EpisodeWriter(make_online_buffer(100, batch_size=2, seq_len=3)), 0)
