"""``atomic_write`` (checkpoints, configs, evaluation JSON) gives files the mode a plain ``open`` gives: 0644.

``tempfile.mkstemp`` creates 0600 files and ``os.replace`` keeps the mode, so checkpoints and run configs
were unreadable to the group and others.
"""

import errno
import os
import stat

import pytest

from vid2act.agents.checkpoint import atomic_write, load_checkpoint, save_checkpoint


@pytest.fixture
def umask():
    """Set a umask for the test, restore the previous one after."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_respects_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write(tmp_path / "config.yaml", lambda f: f.write("seed: 0\n"), binary=False)
    save_checkpoint(tmp_path / "checkpoint.pt", {"meta": {"env": "dmc/walker-walk"}})
    assert _mode(tmp_path / "config.yaml") == expected and _mode(tmp_path / "checkpoint.pt") == expected
    assert load_checkpoint(tmp_path / "checkpoint.pt")["meta"]["env"] == "dmc/walker-walk"


def test_replacing_a_0600_file_gives_the_default_mode(tmp_path, umask):
    umask(0o022)
    old = tmp_path / "checkpoint.pt"
    old.write_bytes(b"old")
    os.chmod(old, 0o600)  # as written by earlier versions
    save_checkpoint(old, {"steps": 1})
    assert _mode(old) == 0o644


def test_a_failed_write_leaves_no_temp_file_and_the_old_content(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("old\n")

    def fail(f):
        f.write("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what torch.save / write raise on a full disk

    with pytest.raises(OSError) as info:
        atomic_write(path, fail, binary=False)
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)  # the error line names the file
    from vid2act.agents.errors import error_line

    assert error_line(info.value).startswith(f"error: No space left on device: {path}; the disk is full")


def test_temp_names_match_the_stale_file_patterns(tmp_path, monkeypatch):
    """A killed save leaves ``.<name>.<random>.tmp``: the pattern a resume removes (``run_state.STALE_PATTERNS``)."""
    import fnmatch

    from vid2act.agents import checkpoint

    seen = []
    real_replace = os.replace
    monkeypatch.setattr(checkpoint.os, "replace", lambda src, dst: (seen.append(os.path.basename(src)),
                                                                    real_replace(src, dst)))
    save_checkpoint(tmp_path / "checkpoint.pt", {"steps": 1})
    [name] = seen
    assert fnmatch.fnmatch(name, ".checkpoint.pt.*.tmp")
