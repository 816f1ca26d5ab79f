"""The open-loop strip: truth and model as photos, the error as a heatmap with a colormap and a colorbar."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from vid2act.agents.open_loop import save_open_loop_strip  # noqa: E402


@pytest.fixture
def kept(monkeypatch):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    return figures


def _frames(s=2, length=12):
    g = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 256, (s, length, 3, 64, 64), dtype=torch.uint8, generator=g)
    prediction = truth.clone()
    prediction[:, 4:] = 255 - prediction[:, 4:]  # exact on the context, inverted after it
    return truth, prediction


def test_error_rows_are_a_heatmap_with_a_colorbar(tmp_path, kept):
    truth, prediction = _frames()
    assert save_open_loop_strip(tmp_path / "ol.png", truth, prediction, context=4).stat().st_size > 0
    (fig,) = kept
    ax, cbar = fig.axes
    assert "error" in cbar.get_ylabel() and "0-1" in cbar.get_ylabel()  # the colorbar axis explains the scale
    photos, heat = ax.get_images()
    assert photos.get_array().ndim == 3  # RGB truth / model rows
    error = np.ma.getdata(heat.get_array())
    assert error.ndim == 2 and heat.get_cmap().name == "magma"  # a colormapped scalar field, not an RGB image
    shown = error[~np.ma.getmaskarray(heat.get_array())]
    assert shown.min() == 0.0  # exact context frames
    expected = (prediction.float() - truth.float()).abs().mean(2) / 255  # [S, L, H, W]
    assert shown.max() == pytest.approx(float(expected.max()), abs=1e-6) and heat.norm.vmax == pytest.approx(shown.max())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["truth", "model", "error"] * 2
    assert ax.get_xlabel()


def test_error_max_fixes_the_colour_scale(tmp_path, kept):
    truth, prediction = _frames(s=1, length=3)
    save_open_loop_strip(tmp_path / "ol.png", truth, prediction, context=1, error_max=0.5)
    assert kept[0].axes[0].get_images()[1].norm.vmax == 0.5


def test_title_names_the_run_of_the_folder(tmp_path, kept):
    run = tmp_path / "run"
    run.mkdir()
    OmegaConf.save({"env": {"name": "dmc/cheetah-run"}, "agent": {"name": "vid2act"}, "seed": 7}, run / "config.yaml")
    truth, prediction = _frames(s=1, length=3)
    save_open_loop_strip(run / "open_loop.png", truth, prediction, context=2)
    save_open_loop_strip(tmp_path / "other.png", truth, prediction, context=2, title="given")
    titles = [fig.axes[0].get_title() for fig in kept]
    assert titles[0].startswith("dmc/cheetah-run | vid2act | seed 7") and "context 2" in titles[0]
    assert titles[1] == "given"
    with pytest.raises(ValueError, match="S, L, 3, H, W"):
        save_open_loop_strip(tmp_path / "bad.png", truth, prediction[:, :2], context=1)
