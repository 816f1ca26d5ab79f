"""OfflineDataset: round trip, manifest, validation errors, atomic appends, corrupt datasets."""

import json
import os
import shutil

import pytest
import torch

from vid2act.components.data import DatasetError, OfflineDataset
from vid2act.components.data import offline_dataset as offline_dataset_module


def _create(path, **kwargs):
    defaults = dict(task="metaworld/door-close", action_dim=4, image_size=8, behaviour_policy="expert")
    defaults.update(kwargs)
    return OfflineDataset.create(path, **defaults)


def _episode_dirs(path):
    return sorted(os.listdir(path / "episodes"))


def test_round_trip_and_manifest(tmp_path, make_episode):
    path = tmp_path / "door-close"
    ds = _create(path)
    written = [
        make_episode(5, seed=0),
        make_episode(3, seed=1, terminal=True, success_at=2),
        make_episode(7, seed=2),
    ]
    for rows in written:
        ds.append_episode(rows)

    reopened = OfflineDataset.open(path)
    assert (reopened.episodes, reopened.frames, len(reopened)) == (3, 6 + 4 + 8, 18)
    loaded = reopened.load()
    assert loaded.batch_size == torch.Size([18])
    expected_ids = torch.tensor([0] * 6 + [1] * 4 + [2] * 8)
    assert torch.equal(loaded["episode"], expected_ids)
    for key in ("pixels", "prev_action", "reward", "is_first", "is_last", "is_terminal", "success"):
        assert torch.equal(loaded[key], torch.cat([rows[key] for rows in written])), key
    assert loaded["pixels"].dtype == torch.uint8
    assert torch.equal(reopened.episode(1)["pixels"], written[1]["pixels"])
    assert torch.equal(reopened.episode(-1)["prev_action"], written[2]["prev_action"])
    with pytest.raises(IndexError, match="out of range"):
        reopened.episode(3)

    m = reopened.manifest
    assert m["format_version"] == 1
    assert (m["task"], m["suite"], m["behaviour_policy"]) == ("metaworld/door-close", "metaworld", "expert")
    assert (m["episodes"], m["frames"], m["env_steps"], m["action_dim"], m["image_size"]) == (3, 18, 15, 4, 8)
    assert [r["length"] for r in m["episode_records"]] == [6, 4, 8]
    assert [r["return"] for r in m["episode_records"]] == [15.0, 6.0, 28.0]  # sum of 1..T
    assert [r["success"] for r in m["episode_records"]] == [False, True, False]
    assert m["created"] <= m["updated"]
    assert _episode_dirs(path) == ["000000", "000001", "000002"]
    # the manifest property is a copy: mutating it does not change the dataset
    m["episodes"] = 99
    assert reopened.episodes == 3


def test_load_to_device_and_empty_dataset(tmp_path, make_episode):
    ds = _create(tmp_path / "ds")
    with pytest.raises(DatasetError, match="no episodes"):
        ds.load()
    ds.append_episode(make_episode(2))
    assert ds.load(device="cpu").device == torch.device("cpu")


def test_create_existing(tmp_path, make_episode):
    path = tmp_path / "ds"
    _create(path).append_episode(make_episode(2))
    with pytest.raises(FileExistsError, match=str(path)):
        _create(path)
    same = _create(path, exist_ok=True)
    assert same.episodes == 1
    again = OfflineDataset.open_or_create(
        path, task="metaworld/door-close", action_dim=4, image_size=8, behaviour_policy="expert"
    )
    assert again.episodes == 1
    with pytest.raises(DatasetError, match="action_dim: stored 4, requested 6"):
        _create(path, action_dim=6, exist_ok=True)
    with pytest.raises(DatasetError, match="behaviour_policy: stored 'expert', requested 'random'"):
        _create(path, behaviour_policy="random", exist_ok=True)
    fresh = OfflineDataset.open_or_create(
        tmp_path / "new", task="dmc/walker-walk", action_dim=6, behaviour_policy="random"
    )
    assert (fresh.episodes, fresh.image_size, fresh.manifest["suite"]) == (0, 64, "dmc")


def test_create_refuses_foreign_directory_and_bad_args(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not an empty directory"):
        _create(tmp_path / "other")
    with pytest.raises(ValueError, match="action_dim"):
        _create(tmp_path / "a", action_dim=0)
    with pytest.raises(ValueError, match="image_size"):
        _create(tmp_path / "b", image_size=-1)


def _break(kind, rows):
    rows = rows.clone()
    if kind == "image_size":
        rows["pixels"] = torch.zeros(rows.shape[0], 3, 16, 16, dtype=torch.uint8)
    elif kind == "float_pixels":
        rows["pixels"] = rows["pixels"].float()
    elif kind == "hwc_pixels":
        rows["pixels"] = rows["pixels"].permute(0, 2, 3, 1)
    elif kind == "action_dim_larger":
        rows["prev_action"] = torch.zeros(rows.shape[0], 5)
    elif kind == "action_dim_smaller":
        rows["prev_action"] = torch.zeros(rows.shape[0], 3)
    elif kind == "nan_action":
        rows["prev_action"][2, 1] = float("nan")
    elif kind == "inf_reward":
        rows["reward"][3] = float("inf")
    elif kind == "first_action_nonzero":
        rows["prev_action"][0, 0] = 0.5
    elif kind == "is_first_middle":
        rows["is_first"][2] = True
    elif kind == "no_is_last":
        rows["is_last"][-1] = False
    elif kind == "terminal_middle":
        rows["is_terminal"][1] = True
    elif kind == "missing_key":
        del rows["success"]
    elif kind == "int_flags":
        rows["is_first"] = rows["is_first"].long()
    elif kind == "single_row":
        rows = rows[:1]
    return rows


@pytest.mark.parametrize(
    "kind, error, match",
    [
        ("image_size", ValueError, r"image_size=8"),
        ("float_pixels", TypeError, "uint8"),
        ("hwc_pixels", ValueError, "CHW"),
        ("action_dim_larger", ValueError, "dimension 5, the dataset expects 4"),
        ("action_dim_smaller", ValueError, "pad_actions=True"),
        ("nan_action", ValueError, r"NaN/Inf values at rows \[2\]"),
        ("inf_reward", ValueError, r"'reward' has NaN/Inf values at rows \[3\]"),
        ("first_action_nonzero", ValueError, "zeros on row 0"),
        ("is_first_middle", ValueError, "'is_first' must be True on row 0 only"),
        ("no_is_last", ValueError, "'is_last' must be True on the final row"),
        ("terminal_middle", ValueError, "'is_terminal' may only be True on the final row"),
        ("missing_key", ValueError, r"miss keys \['success'\]"),
        ("int_flags", TypeError, "'is_first' must be bool"),
        ("single_row", ValueError, "at least 2 rows"),
    ],
)
def test_bad_episode_is_rejected_and_dataset_intact(tmp_path, make_episode, kind, error, match):
    path = tmp_path / "ds"
    ds = _create(path)
    ds.append_episode(make_episode(4, seed=0))
    before = ds.manifest
    with pytest.raises(error, match=match):
        ds.append_episode(_break(kind, make_episode(5, seed=1)))
    assert ds.manifest == before
    reopened = OfflineDataset.open(path)
    assert reopened.episodes == 1 and reopened.frames == 5
    assert _episode_dirs(path) == ["000000"]


def test_pad_actions(tmp_path, make_episode):
    ds = _create(tmp_path / "ds", action_dim=6, pad_actions=True)
    rows = make_episode(3, action_dim=4)
    ds.append_episode(rows)
    stored = ds.load()["prev_action"]
    assert stored.shape == (4, 6)
    assert torch.equal(stored[:, :4], rows["prev_action"])
    assert torch.all(stored[:, 4:] == 0)
    assert ds.manifest["episode_records"][0]["action_dim"] == 4
    with pytest.raises(ValueError, match="dimension 7, the dataset expects 6"):
        ds.append_episode(make_episode(3, action_dim=7))


def test_extra_keys_dropped_and_episode_id_overwritten(tmp_path, make_episode):
    ds = _create(tmp_path / "ds")
    rows = make_episode(3)
    rows["episode"] = torch.full((4,), 42)
    rows["collector_junk"] = torch.zeros(4, 2)
    ds.append_episode(rows)
    loaded = ds.load()
    assert "collector_junk" not in loaded.keys()
    assert torch.equal(loaded["episode"], torch.zeros(4, dtype=torch.int64))


def test_failure_after_episode_write_leaves_dataset_unchanged(tmp_path, make_episode, monkeypatch):
    path = tmp_path / "ds"
    ds = _create(path)
    ds.append_episode(make_episode(4, seed=0))

    def crash(*args, **kwargs):
        raise OSError("disk full while writing the manifest")

    monkeypatch.setattr(offline_dataset_module, "write_manifest", crash)
    with pytest.raises(OSError, match="disk full"):
        ds.append_episode(make_episode(5, seed=1))
    monkeypatch.undo()
    assert ds.episodes == 1
    assert _episode_dirs(path) == ["000000"]  # the renamed episode was removed again
    assert OfflineDataset.open(path).episodes == 1
    ds.append_episode(make_episode(6, seed=2))
    assert OfflineDataset.open(path).episode_lengths == [5, 7]


def test_hard_crash_leftovers_are_ignored_then_cleaned(tmp_path, make_episode, monkeypatch):
    """A process killed mid-append cannot clean up: leftovers must not count and must go on the next append."""
    path = tmp_path / "ds"
    ds = _create(path)
    ds.append_episode(make_episode(4, seed=0))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    # simulate a kill between the rename and the manifest write: no cleanup happens
    monkeypatch.setattr(offline_dataset_module, "write_manifest", crash)
    monkeypatch.setattr(offline_dataset_module.shutil, "rmtree", lambda *a, **k: None)
    with pytest.raises(KeyboardInterrupt):
        ds.append_episode(make_episode(5, seed=1))
    monkeypatch.undo()
    (path / "episodes" / ".tmp-deadbeef").mkdir()  # a half-written temp dir
    assert _episode_dirs(path) == [".tmp-deadbeef", "000000", "000001"]

    reopened = OfflineDataset.open(path)
    assert reopened.episodes == 1 and len(reopened.load()) == 5
    reopened.append_episode(make_episode(2, seed=3))
    assert _episode_dirs(path) == ["000000", "000001"]
    final = OfflineDataset.open(path)
    assert final.episode_lengths == [5, 3]
    assert torch.equal(final.episode(1)["pixels"], make_episode(2, seed=3)["pixels"])


def test_open_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        OfflineDataset.open(tmp_path / "nope")


def test_open_missing_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"manifest\.json: missing"):
        OfflineDataset.open(tmp_path / "empty")


def _edit_manifest(path, edit):
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update(format_version=7), "unsupported format_version 7"),
        (lambda m: m.pop("action_dim"), "missing field 'action_dim'"),
        (lambda m: m.update(image_size="64"), "field 'image_size' must be"),
        (lambda m: m.update(frames=3), r"frames=3 does not match the episode records \(8\)"),
        (lambda m: m.update(episodes=5), "episodes=5 does not match"),
        (lambda m: m["episode_records"][1].update(id=0), r"episode_records\[1\] has id 0"),
        (lambda m: m["episode_records"][0].pop("success"), r"episode_records\[0\]: missing field 'success'"),
    ],
)
def test_open_corrupt_manifest(tmp_path, make_episode, edit, match):
    path = tmp_path / "ds"
    ds = _create(path)
    ds.append_episode(make_episode(3))
    ds.append_episode(make_episode(3))
    _edit_manifest(path, edit)
    with pytest.raises(DatasetError, match=match) as info:
        OfflineDataset.open(path)
    assert "manifest.json" in str(info.value)


def test_open_manifest_not_json(tmp_path, make_episode):
    path = tmp_path / "ds"
    _create(path)
    (path / "manifest.json").write_text('{"format_version": 1, "task": ')
    with pytest.raises(DatasetError, match=r"manifest\.json: not valid JSON"):
        OfflineDataset.open(path)


def test_open_episode_files_not_matching_manifest(tmp_path, make_episode):
    path = tmp_path / "ds"
    ds = _create(path)
    ds.append_episode(make_episode(3, seed=0))
    ds.append_episode(make_episode(5, seed=1))
    # episode 0's files replaced by another episode's: length differs from the record
    shutil.rmtree(path / "episodes" / "000000")
    shutil.copytree(path / "episodes" / "000001", path / "episodes" / "000000")
    with pytest.raises(DatasetError, match=r"000000/pixels\.memmap: 1152 bytes, expected 768 bytes \(4 rows"):
        OfflineDataset.open(path)
    shutil.rmtree(path / "episodes" / "000000")
    with pytest.raises(DatasetError, match="000000: episode listed in the manifest is missing"):
        OfflineDataset.open(path)


def test_open_truncated_or_garbled_episode_files(tmp_path, make_episode):
    path = tmp_path / "ds"
    ds = _create(path)
    ds.append_episode(make_episode(3))
    pixels = path / "episodes" / "000000" / "pixels.memmap"
    original = pixels.read_bytes()
    pixels.write_bytes(original[:10])
    for _ in range(2):  # checking must not "repair" the file (load_memmap would zero-extend it)
        with pytest.raises(DatasetError, match=r"pixels\.memmap: 10 bytes, expected 768 bytes"):
            OfflineDataset.open(path)
    with pytest.raises(DatasetError, match=r"pixels\.memmap: 10 bytes"):
        ds.load()  # a handle opened before the damage notices it too
    pixels.write_bytes(original)
    assert OfflineDataset.open(path).episodes == 1
    (path / "episodes" / "000000" / "reward.memmap").unlink()
    with pytest.raises(DatasetError, match=r"reward\.memmap: missing"):
        OfflineDataset.open(path)

    other = tmp_path / "other"
    _create(other).append_episode(make_episode(3))
    (other / "episodes" / "000000" / "meta.json").write_text("{not json")
    with pytest.raises(DatasetError, match="000000: unreadable episode"):
        OfflineDataset.open(other)


# ---------------------------------------------------------------------------- render_quality
def test_render_quality_round_trip_and_constants_match_the_envs(tmp_path, make_episode):
    from vid2act.components.data import manifest as manifest_module
    from vid2act.envs import rendering

    assert manifest_module.RENDER_QUALITIES == rendering.RENDER_QUALITIES
    assert manifest_module.DEFAULT_RENDER_QUALITY == rendering.DEFAULT_RENDER_QUALITY
    default = _create(tmp_path / "default")
    assert default.render_quality == "fast" and default.manifest["render_quality"] == "fast"
    ds = _create(tmp_path / "full", render_quality="full")
    ds.append_episode(make_episode(2))
    reopened = OfflineDataset.open(tmp_path / "full")
    assert reopened.render_quality == "full" and reopened.manifest["render_quality"] == "full"
    assert json.loads((tmp_path / "full" / "manifest.json").read_text())["render_quality"] == "full"
    assert "render_quality='full'" in repr(reopened)
    with pytest.raises(ValueError, match=r"render_quality must be one of \['full', 'fast'\], got 'ultra'"):
        _create(tmp_path / "bad", render_quality="ultra")
    assert not (tmp_path / "bad").exists()


def test_manifest_without_render_quality_means_full(tmp_path, make_episode):
    path = tmp_path / "old"
    _create(path, render_quality="full").append_episode(make_episode(2))
    _edit_manifest(path, lambda m: m.pop("render_quality"))  # a manifest written before the field
    old = OfflineDataset.open(path)
    assert old.render_quality == "full" and "render_quality" not in old.manifest
    with pytest.raises(DatasetError, match="render_quality: stored 'full', requested 'fast'"):
        _create(path, exist_ok=True)  # the default quality is "fast"
    same = _create(path, exist_ok=True, render_quality="full")
    same.append_episode(make_episode(3, seed=1))
    assert OfflineDataset.open(path).manifest["render_quality"] == "full"  # now explicit


def test_unknown_render_quality_in_a_manifest_is_refused(tmp_path, make_episode):
    path = tmp_path / "ds"
    _create(path).append_episode(make_episode(2))
    _edit_manifest(path, lambda m: m.update(render_quality="ultra"))
    with pytest.raises(DatasetError, match="render_quality must be one of"):
        OfflineDataset.open(path)


def test_same_size_garbage_in_a_memmap_file_fails_its_checksum(tmp_path, make_episode):
    path = tmp_path / "door-close"
    ds = _create(path)
    for seed in range(2):
        ds.append_episode(make_episode(5, seed=seed))
    assert set(ds.manifest["episode_records"][1]["checksums"]) >= {"pixels.memmap", "reward.memmap"}
    file = path / "episodes" / "000001" / "reward.memmap"
    data = bytearray(file.read_bytes())
    data[0] ^= 0xFF  # same size, different bytes: the size checks cannot see it
    file.write_bytes(bytes(data))
    reopened = OfflineDataset.open(path)  # open checks sizes only (cheap)
    assert torch.equal(reopened.episode(0)["reward"], make_episode(5, seed=0)["reward"])
    with pytest.raises(DatasetError, match=r"000001/reward\.memmap: checksum crc32:"):
        reopened.episode(1)
    with pytest.raises(DatasetError, match="checksum"):
        reopened.load()


def test_truncate_keeps_the_first_episodes_and_removes_the_rest(tmp_path, make_episode):
    path = tmp_path / "door-close"
    ds = _create(path)
    for seed in range(3):
        ds.append_episode(make_episode(4, seed=seed))
    (path / ".manifest.json.tmp-dead").write_text("{")  # left by a kill mid manifest write
    ds.truncate(1)
    reopened = OfflineDataset.open(path)
    assert (reopened.episodes, reopened.frames, reopened.manifest["env_steps"]) == (1, 5, 4)
    assert _episode_dirs(path) == ["000000"] and not list(path.glob(".manifest.json.tmp-*"))
    with pytest.raises(ValueError, match="cannot keep 2 episodes of 1"):
        reopened.truncate(2)
    reopened.append_episode(make_episode(4, seed=5))  # ids continue after the kept episodes
    assert _episode_dirs(path) == ["000000", "000001"]


def test_append_on_a_full_disk_raises_enospc_and_leaves_the_dataset_as_it_was(tmp_path, make_episode, monkeypatch):
    import errno
    from collections import namedtuple

    path = tmp_path / "door-close"
    ds = _create(path)
    ds.append_episode(make_episode(4, seed=0))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(offline_dataset_module.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 1000))
    with pytest.raises(OSError, match="MiB free") as info:
        ds.append_episode(make_episode(4, seed=1))
    assert info.value.errno == errno.ENOSPC
    assert OfflineDataset.open(path).episodes == 1 and _episode_dirs(path) == ["000000"]


def test_create_reuses_what_a_create_killed_before_its_manifest_left(tmp_path):
    path = tmp_path / "door-close"
    (path / "episodes").mkdir(parents=True)
    assert _create(path).episodes == 0
    (tmp_path / "other" / "episodes").mkdir(parents=True)
    (tmp_path / "other" / "episodes" / "x").write_text("x")  # not empty: someone's data, refused
    with pytest.raises(DatasetError, match="not an empty directory"):
        _create(tmp_path / "other")
