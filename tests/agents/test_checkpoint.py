"""Checkpoints are atomic, load with weights_only=True and refuse a mismatching run."""

import pytest
import torch

from vid2act.agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_and_metadata_check(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pt", {"w": torch.arange(3.0), "meta": {"model": "tiny", "action_dim": 4}})
    state = load_checkpoint(path, expect={"model": "tiny", "action_dim": 4})
    assert torch.equal(state["w"], torch.arange(3.0))
    with pytest.raises(CheckpointError, match="action_dim: checkpoint has 4, expected 6"):
        load_checkpoint(path, expect={"action_dim": 6})


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(bad)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt.pt", {"step": 1})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_arbitrary_objects_are_refused_by_weights_only(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": object()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
