"""import_npz_episodes: dreamer-style npz folders -> OfflineDatasets, all-or-nothing."""

import os

import numpy as np
import pytest
import torch

from vid2act.components.data import DatasetError, OfflineDataset, import_npz_episodes

S = 8  # small frames keep the test fast; the importer checks the size it is given


def _npz_arrays(steps, *, action_dim=3, seed=0, is_first=None, discount_zero_at=None, extra=None):
    """``steps`` rows in the dreamer layout: action[0] zero, reward[t] = 0.5 * t."""
    rng = np.random.default_rng(seed)
    action = rng.uniform(-1, 1, (steps, action_dim)).astype(np.float32)
    action[0] = 0
    arrays = {
        "image": rng.integers(0, 256, (steps, S, S, 3), dtype=np.uint8),
        "action": action,
        "reward": (0.5 * np.arange(steps)).astype(np.float32),
    }
    if is_first is not None:
        arrays["is_first"] = is_first
    if discount_zero_at is not None:
        discount = np.ones(steps, np.float32)
        discount[discount_zero_at] = 0
        arrays["discount"] = discount
    arrays.update(extra or {})
    return arrays


def _write(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def test_import_round_trip(tmp_path):
    src = tmp_path / "src"
    a = _write(src / "walker_walk" / "20220101T000000-a-6.npz", _npz_arrays(6, seed=0, discount_zero_at=5))
    # one file holding two episodes of 4 and 3 rows, split at is_first
    first = np.zeros(7, bool)
    first[[0, 4]] = True
    b = _npz_arrays(7, seed=1, is_first=first)
    b["action"][4] = 0  # the second episode's zero action
    _write(src / "walker_walk" / "20220101T000001-b-7.npz", b)
    [ds] = import_npz_episodes(src, tmp_path / "dst", image_size=S, behaviour_policy="random")

    assert ds.path == tmp_path / "dst" / "walker_walk"
    assert (ds.task, ds.manifest["suite"], ds.manifest["behaviour_policy"]) == ("walker_walk", "unknown", "random")
    assert (ds.episodes, ds.frames, ds.action_dim) == (3, 13, 3)
    assert ds.episode_lengths == [6, 4, 3]
    rows = ds.load()
    images = np.concatenate([a["image"], b["image"]])
    assert torch.equal(rows["pixels"], torch.from_numpy(images).permute(0, 3, 1, 2))
    assert torch.equal(rows["prev_action"], torch.from_numpy(np.concatenate([a["action"], b["action"]])))
    assert torch.equal(rows["reward"][:, 0], torch.from_numpy(np.concatenate([a["reward"], b["reward"]])))
    assert rows["is_first"][:, 0].nonzero().flatten().tolist() == [0, 6, 10]
    assert rows["is_last"][:, 0].nonzero().flatten().tolist() == [5, 9, 12]
    assert rows["is_terminal"][:, 0].nonzero().flatten().tolist() == [5]  # discount == 0
    assert rows["episode"].unique_consecutive().tolist() == [0, 1, 2]
    assert not rows["success"].any()


def test_import_named_task_nested_destination_and_padding(tmp_path):
    src = tmp_path / "src"
    _write(src / "walker_walk" / "ep.npz", _npz_arrays(5, action_dim=3, extra={"is_terminal": np.zeros(5, bool)}))
    [ds] = import_npz_episodes(src, tmp_path / "dst", task="dmc/walker-walk", action_dim=6, image_size=S)
    assert ds.path == tmp_path / "dst" / "dmc" / "walker-walk"
    assert (ds.task, ds.manifest["suite"], ds.action_dim) == ("dmc/walker-walk", "dmc", 6)
    assert ds.manifest["episode_records"][0]["action_dim"] == 3
    assert (ds.load()["prev_action"][:, 3:] == 0).all()
    assert OfflineDataset.open(ds.path).episodes == 1


def test_import_several_folders(tmp_path):
    src = tmp_path / "src"
    _write(src / "cheetah_run" / "ep.npz", _npz_arrays(4, action_dim=6))
    _write(src / "hopper_stand" / "ep.npz", _npz_arrays(5, action_dim=4))
    datasets = import_npz_episodes(src, tmp_path / "dst", image_size=S)
    assert [(d.task, d.action_dim, d.frames) for d in datasets] == [("cheetah_run", 6, 4), ("hopper_stand", 4, 5)]
    with pytest.raises(ValueError, match="import them one at a time"):
        import_npz_episodes(src, tmp_path / "dst2", task="dmc/x", image_size=S)
    with pytest.raises(FileExistsError, match="already exists"):
        import_npz_episodes(src, tmp_path / "dst", image_size=S)


def _corrupt(kind, path):
    if kind == "not_zip":
        path.write_bytes(b"this is not an npz archive at all")
    elif kind == "npy_not_npz":
        np.save(open(path, "wb"), np.zeros(3))
    elif kind == "missing_image":
        arrays = _npz_arrays(4)
        del arrays["image"]
        np.savez(path, **arrays)
    elif kind == "wrong_image_shape":
        np.savez(path, **_npz_arrays(4, extra={"image": np.zeros((4, 3, S, S), np.uint8)}))
    elif kind == "nan_action":
        arrays = _npz_arrays(4)
        arrays["action"][2, 0] = np.nan
        np.savez(path, **arrays)
    elif kind == "other_action_dim":
        np.savez(path, **_npz_arrays(4, action_dim=5))
    elif kind == "short_reward":  # numpy's reshape error, without the file's name, before the check
        arrays = _npz_arrays(4)
        arrays["reward"] = arrays["reward"][:3]
        np.savez(path, **arrays)
    elif kind == "per_step_pairs":  # [T, 2]: as many rows as frames, two values each
        np.savez(path, **_npz_arrays(4, extra={"discount": np.ones((4, 2), np.float32)}))
    elif kind == "truncated_zip":
        np.savez(path, **_npz_arrays(4))
        path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize(
    "kind, match",
    [
        ("not_zip", "not a readable npz archive"),
        ("npy_not_npz", "not a readable npz archive"),
        ("missing_image", "missing array 'image'"),
        ("wrong_image_shape", r"'image' must be uint8 \[T, 8, 8, 3\]"),
        ("nan_action", "NaN/Inf"),
        ("other_action_dim", "dimension 5, the dataset expects 3"),
        ("truncated_zip", "not a readable npz archive"),
        ("short_reward", r"'reward' holds 3 values \(shape \[3\]\) for the file's 4 frames.*re-export the file"),
        ("per_step_pairs", r"'discount' holds 8 values \(shape \[4, 2\]\) for the file's 4 frames"),
    ],
)
def test_corrupt_file_imports_nothing(tmp_path, kind, match):
    src = tmp_path / "src"
    _write(src / "a_good_task" / "ep.npz", _npz_arrays(4))  # imported first, must be rolled back
    _write(src / "bad_task" / "0-good.npz", _npz_arrays(4))
    bad = src / "bad_task" / "1-bad.npz"
    _corrupt(kind, bad)
    dst = tmp_path / "dst"
    with pytest.raises(DatasetError, match=match) as info:
        import_npz_episodes(src, dst, image_size=S)
    assert str(bad) in str(info.value)
    assert os.listdir(dst) == []  # no dataset, no staging leftovers


def test_missing_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        import_npz_episodes(tmp_path / "nothing-here", tmp_path / "dst")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no \\*.npz files"):
        import_npz_episodes(tmp_path / "empty", tmp_path / "dst")


def test_import_records_render_quality_full_unless_told(tmp_path):
    src = tmp_path / "src"
    _write(src / "walker_walk" / "ep.npz", _npz_arrays(4))
    [ds] = import_npz_episodes(src, tmp_path / "dst", image_size=S)
    assert ds.render_quality == "full" and ds.manifest["render_quality"] == "full"
    [fast] = import_npz_episodes(src, tmp_path / "dst_fast", image_size=S, render_quality="fast")
    assert OfflineDataset.open(fast.path).render_quality == "fast"
    with pytest.raises(ValueError, match="render_quality must be one of"):
        import_npz_episodes(src, tmp_path / "dst_bad", image_size=S, render_quality="ultra")
    assert not (tmp_path / "dst_bad").exists()
