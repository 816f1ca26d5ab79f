"""MultiTaskOfflineData: discovery under a root, balanced [N, B, T] batches, action-dim padding."""

import pytest
import torch

from vid2act.components.data import DatasetError, MultiTaskOfflineData, OfflineDataset


def _source(path, make_episode, *, task, action_dim, value, image_size=8, episodes=3):
    """A dataset whose pixels all equal ``value`` so a batch's origin can be checked."""
    ds = OfflineDataset.create(path, task=task, action_dim=action_dim, image_size=image_size,
                               behaviour_policy="expert")
    for seed in range(episodes):
        rows = make_episode(6 + seed, action_dim=action_dim, image_size=image_size, seed=seed)
        rows["pixels"] = torch.full_like(rows["pixels"], value)
        ds.append_episode(rows)
    return ds


@pytest.fixture
def root(tmp_path, make_episode):
    root = tmp_path / "data"
    _source(root / "metaworld" / "door-close", make_episode, task="metaworld/door-close", action_dim=4, value=10)
    _source(root / "metaworld" / "faucet-open", make_episode, task="metaworld/faucet-open", action_dim=4, value=20)
    _source(root / "dmc" / "walker-walk", make_episode, task="dmc/walker-walk", action_dim=6, value=30)
    return root


def test_action_dim_mismatch_is_a_clear_error(root):
    with pytest.raises(DatasetError) as info:
        MultiTaskOfflineData.from_root(root)
    message = str(info.value)
    for part in ("dmc/walker-walk", ": 6", "metaworld/door-close", ": 4", "action_dim >= 6"):
        assert part in message
    with pytest.raises(DatasetError, match=r"\['dmc/walker-walk'\] have actions wider than action_dim=5"):
        MultiTaskOfflineData.from_root(root, action_dim=5)


def test_balanced_padded_sampling(root):
    data = MultiTaskOfflineData.from_root(root, action_dim=6)
    assert data.names == ("dmc/walker-walk", "metaworld/door-close", "metaworld/faucet-open")
    assert data.num_tasks == 3 and data.action_dim == 6
    assert data.source_action_dims == {"dmc/walker-walk": 6, "metaworld/door-close": 4, "metaworld/faucet-open": 4}
    B, T = 5, 4
    source_values = [30, 10, 20]
    for _ in range(20):
        batch = data.sample(B, T)
        assert batch.batch_size == torch.Size([3, B, T])
        assert batch["task_index"].dtype == torch.int64
        for i, value in enumerate(source_values):
            assert (batch["task_index"][i] == i).all()
            assert (batch["pixels"][i] == value).all(), "sequence drawn from the wrong source"
            episode = batch["episode"][i]
            assert (episode == episode[:, :1]).all()
            assert not batch["is_first"][i, :, 1:].any()
        assert batch["prev_action"].shape == (3, B, T, 6)
        assert (batch["prev_action"][1:, ..., 4:] == 0).all()  # 4-dim sources zero-padded
    assert batch["prev_action"][0, ..., 4:].abs().sum() > 0  # the 6-dim source keeps its actions
    flat = batch.flatten(0, 1)
    assert flat.batch_size == torch.Size([3 * B, T])


def test_hidden_staging_directories_are_skipped(root, make_episode):
    _source(root / ".import-0123" / "half-done", make_episode, task="dmc/half", action_dim=4, value=1)
    assert MultiTaskOfflineData.from_root(root, action_dim=6).num_tasks == 3


def test_names_select_and_order(root):
    data = MultiTaskOfflineData.from_root(root, names=["metaworld/faucet-open", "metaworld/door-close"])
    assert data.action_dim == 4
    batch = data.sample(2, 3)
    assert (batch["pixels"][0] == 20).all() and (batch["pixels"][1] == 10).all()
    assert batch["task_index"][:, 0, 0].tolist() == [0, 1]


def test_mapping_and_sequence_constructors(root):
    door = OfflineDataset.open(root / "metaworld" / "door-close")
    walker = OfflineDataset.open(root / "dmc" / "walker-walk")
    data = MultiTaskOfflineData([door, walker], action_dim=6)
    assert data.names == ("metaworld/door-close", "dmc/walker-walk")
    data = MultiTaskOfflineData({"a": walker, "b": door}, action_dim=6)
    assert data.names == ("a", "b")
    with pytest.raises(ValueError, match="unique"):
        MultiTaskOfflineData([door, door])
    with pytest.raises(ValueError, match="at least one"):
        MultiTaskOfflineData([])


def test_seq_len_too_long_names_the_source(root):
    data = MultiTaskOfflineData.from_root(root, action_dim=6)
    with pytest.raises(ValueError, match="no episode has seq_len=10 rows"):
        data.sample(2, 10)


def test_missing_and_mismatched_roots(tmp_path, root, make_episode):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        MultiTaskOfflineData.from_root(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no dataset"):
        MultiTaskOfflineData.from_root(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing-task"):
        MultiTaskOfflineData.from_root(root, names=["missing-task"])
    _source(tmp_path / "big" / "x", make_episode, task="dmc/x", action_dim=4, value=1, image_size=16)
    _source(tmp_path / "big" / "y", make_episode, task="dmc/y", action_dim=4, value=1, image_size=8)
    with pytest.raises(ValueError, match="different image sizes"):
        MultiTaskOfflineData.from_root(tmp_path / "big")


def test_render_quality_is_shared_and_mixed_qualities_are_refused(tmp_path, make_episode):
    root = tmp_path / "data"
    for name, quality in (("a", "fast"), ("b", "fast"), ("c", "full")):
        OfflineDataset.create(root / name, task=f"dmc/{name}", action_dim=2, image_size=8, behaviour_policy="random",
                              render_quality=quality).append_episode(make_episode(4, action_dim=2))
    assert MultiTaskOfflineData.from_root(root, names=["a", "b"]).render_quality == "fast"
    assert MultiTaskOfflineData.from_root(root, names=["c"]).render_quality == "full"
    with pytest.raises(ValueError) as info:
        MultiTaskOfflineData.from_root(root)
    message = str(info.value)
    assert "different render qualities" in message and f"c ({root / 'c'}): full" in message
    assert "a (" in message and ": fast" in message and "env.render_quality=" in message
