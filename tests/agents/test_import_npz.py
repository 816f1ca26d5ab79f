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
    captured = capsys.readouterr()
    text = captured.out
    assert status == 2  # one folder failed
    assert "skipped  big_frames: frames are 16x16 (a.npz), not 8x8" in text
    [line] = captured.err.splitlines()  # one error line, naming the folder and the file
    assert line.startswith("error: folder corrupt not imported: ") and "not a readable npz archive" in line
    assert str(src / "corrupt" / "a.npz") in line
    assert "2 of 4 folders imported" in text and "skipped (image size): big_frames" in text
    assert "failed: corrupt" in text
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
    capsys.readouterr()
    assert main([str(src), str(out), "--image-size", "8"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: folder reacher_easy not imported: a dataset already exists") and "remove it" in line
    assert OfflineDataset.open(out / "reacher_easy").action_dim == 6  # the existing dataset is as it was


def test_usage_errors(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"error: no source directory at {tmp_path / 'missing'}, in SRC_DIR")
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no *.npz files") and "pass a folder of <task>/*.npz folders" in line
    _episode(tmp_path / "src" / "walker_walk" / "a.npz", size=8)
    assert main([str(tmp_path / "src"), str(tmp_path / "out"), "--image-size", "0"]) == 2
    assert "--image-size=0" in capsys.readouterr().err
    # every folder skipped for its frame size: nothing imported is a failure, with its fix
    assert main([str(tmp_path / "src"), str(tmp_path / "out"), "--image-size", "16"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no folder of") and "--image-size=<their frame size>" in line
    assert not (tmp_path / "out").exists()


def test_short_reward_array_is_one_line_naming_the_file(tmp_path, capsys):
    """A ``reward`` shorter than ``image`` was numpy's reshape error, without the file's name."""
    src = tmp_path / "src"
    _episode(src / "walker_walk" / "a.npz", steps=4)
    with np.load(src / "walker_walk" / "a.npz") as f:
        arrays = dict(f)
    arrays["reward"] = arrays["reward"][:3]
    np.savez(src / "walker_walk" / "a.npz", **arrays)
    assert main([str(src), str(tmp_path / "out"), "--image-size", "8"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: folder walker_walk not imported: ") and str(src / "walker_walk" / "a.npz") in line
    assert "'reward' holds 3 values" in line and "4 frames" in line
    assert not (tmp_path / "out" / "walker_walk").exists()


def test_argument_errors_are_one_line_with_status_2(tmp_path, capsys):
    try:
        main([str(tmp_path)])  # OUT_DIR missing
    except SystemExit as exit_:
        assert exit_.code == 2
    else:
        raise AssertionError("a missing OUT_DIR was accepted")
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: the following arguments are required: OUT_DIR") and "--help" in line


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
