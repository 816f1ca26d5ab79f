"""RNG capture/restore, CSV truncation, stale-file removal and the free-space check of a resumable run."""

import errno
import random

import numpy as np
import pytest
import torch

from vid2act.agents.run_state import capture_rng, check_free_space, remove_stale_files, restore_rng, truncate_csvs


def _draw():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_restored_rng_repeats_the_same_draws_and_survives_weights_only_load(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    _draw()
    torch.save(capture_rng(), tmp_path / "rng.pt")
    first = _draw()
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert _draw() == first
    with pytest.raises(ValueError, match="capture_rng"):
        restore_rng({"torch": torch.get_rng_state()})


def test_truncate_csvs_drops_rows_after_the_checkpoint_frame(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "return.csv").write_text("100,1.0\n200,2.0\n300,3.0\n")
    (tmp_path / "other.csv").write_text("step,value\n")  # not ours: left alone
    assert truncate_csvs(tmp_path, 200) == 1
    assert (tmp_path / "eval" / "return.csv").read_text() == "100,1.0\n200,2.0\n"
    assert (tmp_path / "other.csv").read_text() == "step,value\n"
    assert truncate_csvs(tmp_path / "missing", 0) == 0


def test_remove_stale_files_removes_temp_files_and_old_buffer_dumps_only(tmp_path):
    for name in (".checkpoint.pt.abc.tmp", ".config.yaml.x.tmp", "checkpoint.pt", "config.yaml"):
        (tmp_path / name).write_text("x")
    (tmp_path / "buffer.old").mkdir()
    removed = remove_stale_files(tmp_path)
    assert sorted(removed) == [".checkpoint.pt.abc.tmp", ".config.yaml.x.tmp", "buffer.old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "config.yaml"]


def test_free_space_check_raises_enospc_naming_the_folder(tmp_path):
    check_free_space(tmp_path / "not" / "yet" / "checkpoint.pt", 1)
    with pytest.raises(OSError, match="no space left") as info:
        check_free_space(tmp_path, 2**62)
    assert info.value.errno == errno.ENOSPC and str(tmp_path) in str(info.value)


def test_truncate_csv_rows_cuts_back_to_the_recorded_rows_even_at_the_same_step(tmp_path):
    from vid2act.agents.run_state import csv_row_counts, truncate_csv_rows

    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "return.csv").write_text("100,1.0\n200,2.0\n")
    counts = csv_row_counts(tmp_path)
    assert counts == {"eval/return.csv": 2}
    # after the checkpoint: an evaluation at the checkpoint's own frame, a half-written row, a new file
    (tmp_path / "eval" / "return.csv").write_text("100,1.0\n200,2.0\n200,2.5\n30")
    (tmp_path / "eval" / "success.csv").write_text("200,0.0\n")
    assert truncate_csv_rows(tmp_path, counts) == 2
    assert (tmp_path / "eval" / "return.csv").read_text() == "100,1.0\n200,2.0\n"
    assert (tmp_path / "eval" / "success.csv").read_text() == ""
