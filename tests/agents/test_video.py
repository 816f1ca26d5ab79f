"""Evaluation GIFs: upscaled 64 -> 256 (nearest) with the step and the return drawn on every frame."""

import numpy as np
import pytest
import torch

from vid2act.agents.evaluate import _write_gif
from vid2act.agents.metrics import read_video
from vid2act.agents.video import annotate_frames, write_gif


def _still(t=5):
    """``t`` identical frames: every difference between frames comes from the overlay."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8, generator=g).expand(t, 3, 64, 64).clone()


def test_frames_are_upscaled_nearest_and_the_overlay_changes_with_step_and_return():
    pixels = _still()
    out = annotate_frames(pixels, torch.ones(5, 1))
    assert out.shape == (5, 256, 256, 3) and out.dtype == np.uint8
    # outside the text box every 4x4 block is one source pixel (nearest neighbour)
    source = pixels[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(out[0, 128:, 128:], source[32:, 32:].repeat(4, 0).repeat(4, 1))
    corner = out[:, :40, :100]
    assert all(np.abs(corner[i + 1].astype(int) - corner[i]).max() > 0 for i in range(4))  # step / return change
    assert not np.array_equal(out[0, :40, :100], source[:10, :25].repeat(4, 0).repeat(4, 1))  # text drawn


def test_the_return_is_the_running_sum_of_rewards():
    pixels = _still(2)
    a = annotate_frames(pixels, [1.0, 0.0])  # returns 1.0, 1.0
    b = annotate_frames(pixels, [1.0, 1.0])  # returns 1.0, 2.0
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])  # same step, other return
    c = annotate_frames(pixels, [0.5, 1.5])  # returns 0.5, 2.0: the second frame reads as b's
    np.testing.assert_array_equal(c[1], b[1])
    assert not np.array_equal(c[0], b[0])


def test_errors_and_options():
    with pytest.raises(ValueError, match="rewards"):
        annotate_frames(_still(3), torch.ones(4))
    with pytest.raises(ValueError, match="scale"):
        annotate_frames(_still(2), scale=0)
    with pytest.raises(ValueError, match=r"\[T, 3, H, W\]"):
        annotate_frames(torch.zeros(2, 64, 64, dtype=torch.uint8))
    assert annotate_frames(_still(2).permute(0, 2, 3, 1).numpy(), scale=1).shape == (2, 64, 64, 3)
    done = annotate_frames(_still(2), [0.0, 1.0], successes=[False, True])
    plain = annotate_frames(_still(2), [0.0, 1.0])
    np.testing.assert_array_equal(done[0], plain[0])
    assert not np.array_equal(done[1], plain[1])  # "success" drawn from the step it was reported


def test_evaluation_gif_is_256_px_and_moving(tmp_path):
    _write_gif(_still(6), tmp_path / "videos" / "eval.gif", rewards=torch.ones(6, 1))
    frames = read_video(tmp_path / "videos" / "eval.gif")
    assert frames.shape == (6, 3, 256, 256)
    assert (frames[1:].int() - frames[:-1].int()).abs().amax() > 0
    assert not list((tmp_path / "videos").glob("*.tmp*"))  # written atomically
    assert write_gif(tmp_path / "w.gif", np.zeros((2, 8, 8, 3), np.uint8)).exists()
