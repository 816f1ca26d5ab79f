"""``vid2act-import``: every npz task folder with the right frame size imported, the others named."""

import numpy as np

from vid2act.agents.import_npz import frame_size, main
from vid2act.components.data import OfflineDataset


def _episode(path, *, steps=5, size=8, action_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    action = rng.uniform(-1, 1, (steps, action_dim)).astype(np.float32)
    action[0] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, image=rng.integers(0, 256, (steps, size, size, 3), dtype=np.uint8), action=action,
        reward=np.ones(steps, np.float32),
    )


def test_imports_matching_folders_and_names_the_others(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    _episode(src / "walker_walk" / "a.npz")
    _episode(src / "walker_walk" / "b.npz", seed=1, steps=4)
    _episode(src / "cheetah_run" / "a.npz", action_dim=6)
    _episode(src / "big_frames" / "a.npz", size=16)
    (src / "corrupt").mkdir()
    (src / "corrupt" / "a.npz").write_bytes(b"not a zip")

    status = main([str(src), str(out), "--image-size", "8", "--behaviour-policy", "random"])
    text = capsys.readouterr().out
    assert status == 1  # one folder failed
    assert "skipped  big_frames: frames are 16x16 (a.npz), not 8x8" in text
    assert "failed   corrupt: " in text and "not a readable npz archive" in text
    assert "2 of 4 folders imported" in text and "skipped (image size): big_frames" in text
    walker, cheetah = OfflineDataset.open(out / "walker_walk"), OfflineDataset.open(out / "cheetah_run")
    assert (walker.episodes, walker.frames, walker.action_dim) == (2, 9, 2)
    assert cheetah.action_dim == 6 and walker.manifest["behaviour_policy"] == "random"
    assert not (out / "big_frames").exists() and not (out / "corrupt").exists()


def test_action_dim_pads_and_skips_alone_are_success(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    _episode(src / "reacher_easy" / "a.npz", action_dim=2)
    _episode(src / "other_size" / "a.npz", size=16)
    assert main([str(src), str(out), "--image-size", "8", "--action-dim", "6"]) == 0
    assert OfflineDataset.open(out / "reacher_easy").action_dim == 6
    # a second run: the destination exists -> that folder fails, named, and nothing else is touched
    assert main([str(src), str(out), "--image-size", "8"]) == 1
    assert "failed   reacher_easy: a dataset already exists" in capsys.readouterr().out


def test_usage_errors(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "no *.npz files" in capsys.readouterr().err


def test_frame_size_reads_the_header(tmp_path):
    _episode(tmp_path / "a.npz", steps=3, size=8)
    assert frame_size(tmp_path / "a.npz") == (3, 8, 8, 3)
    (tmp_path / "b.npz").write_bytes(b"junk")
    assert frame_size(tmp_path / "b.npz") is None


def test_render_quality_is_recorded_full_unless_told(tmp_path, capsys):
    src = tmp_path / "src"
    _episode(src / "walker_walk" / "a.npz")
    assert main([str(src), str(tmp_path / "full"), "--image-size", "8"]) == 0
    assert OfflineDataset.open(tmp_path / "full" / "walker_walk").render_quality == "full"
    assert "render_quality full" in capsys.readouterr().out
    assert main([str(src), str(tmp_path / "fast"), "--image-size", "8", "--render-quality", "fast"]) == 0
    assert OfflineDataset.open(tmp_path / "fast" / "walker_walk").render_quality == "fast"
    capsys.readouterr()
    try:
        main([str(src), str(tmp_path / "bad"), "--render-quality", "ultra"])
    except SystemExit as exit_:
        assert exit_.code == 2 and "invalid choice: 'ultra'" in capsys.readouterr().err
    else:
        raise AssertionError("an unknown --render-quality was accepted")
