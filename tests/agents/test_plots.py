"""Comparison plots of several runs (vid2act.agents.plots)."""

import matplotlib

matplotlib.use("Agg")

from vid2act.agents.plots import plot_agent_comparison, read_scalar  # noqa: E402


def _write(csv_dir, name, rows):
    path = csv_dir / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x},{y}\n" for x, y in rows))


def test_comparison_plot_draws_each_run_and_the_baselines(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    for run, scale in (("a", 1.0), ("b", 2.0)):
        _write(tmp_path / run / "eval", "return", [(1000 * i, scale * i) for i in range(1, 4)])
    assert read_scalar(tmp_path / "a", "eval/return")[1].tolist() == [1.0, 2.0, 3.0]
    drawn = {}
    monkeypatch.setattr(plt, "close", lambda fig: drawn.update(fig=fig))  # keep the figure to inspect it
    out = plot_agent_comparison({"a": tmp_path / "a", "b": tmp_path / "b"}, tmp_path / "cmp.png",
                                metrics=("eval/return", "train/episode_return"), baselines={"random": 1.5})
    assert out.stat().st_size > 0
    (ax,) = drawn["fig"].axes  # the panel without data is left out
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b", "random"]
    assert list(ax.get_lines()[2].get_ydata()) == [1.5, 1.5]


def test_no_data_no_figure(tmp_path):
    assert plot_agent_comparison({"a": tmp_path}, tmp_path / "x.png") is None


# ------------------------------------------------------------------ slide-ready figures
import pytest  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from vid2act.agents.plots import (  # noqa: E402
    is_rate,
    metric_label,
    plot_learning_curve,
    plot_similarity_weights,
)


@pytest.fixture
def kept(monkeypatch):
    """The figures the plot functions close, kept open to inspect them."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    return figures


def _run_folder(path, env="dmc/walker-stand", agent="dreamerv2", seed=3):
    """A train run folder as ``train`` leaves it: ``config.yaml`` and ``metrics/scalars``."""
    path.mkdir(parents=True, exist_ok=True)
    OmegaConf.save({"env": {"name": env}, "agent": {"name": agent}, "seed": seed}, path / "config.yaml")
    return path / "metrics" / "scalars"


def _visible_tick_labels(ax, axis="x"):
    ticks, labels = (ax.get_xticks(), ax.get_xticklabels()) if axis == "x" else (ax.get_yticks(), ax.get_yticklabels())
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    return [label for t, label in zip(ticks, labels) if lo <= t <= hi and label.get_text()]


def _assert_readable(fig):
    """No two x tick labels of a panel overlap, and no legend covers a panel."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = sorted((label.get_window_extent(renderer) for label in _visible_tick_labels(ax)), key=lambda b: b.x0)
        for a, b in zip(boxes, boxes[1:]):
            assert a.x1 <= b.x0, f"x tick labels overlap in {ax.get_title()!r}"
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), f"the legend covers {ax.get_title()!r}"


def test_learning_curve_names_the_run_and_labels_axes_with_units(tmp_path, kept):
    csv = _run_folder(tmp_path / "run", seed=3)
    _write(csv / "eval", "return", [(10_000 * i, 100.0 * i) for i in range(1, 11)])
    _write(csv / "eval", "success", [(20_000, 0.5)])  # one point
    _write(csv / "train", "episode_return", [(5_000 * i, 10.0 * i) for i in range(1, 21)])
    assert plot_learning_curve(csv, tmp_path / "run" / "learning_curve.png").stat().st_size > 0
    (fig,) = kept
    title = fig._suptitle.get_text()
    assert "dmc/walker-stand" in title and "dreamerv2" in title and "seed 3" in title
    by_title = {ax.get_title(): ax for ax in fig.axes}
    assert set(by_title) == {"eval/return", "train/episode_return", "eval/success"}
    for ax in fig.axes:
        assert ax.get_xlabel() == "env frames" and ax.get_ylabel()
    assert "sum of rewards" in by_title["eval/return"].get_ylabel()
    success = by_title["eval/success"]
    assert success.get_ylim()[0] <= 0 and 1 <= success.get_ylim()[1] <= 1.1  # success on [0, 1]
    (point,) = success.get_lines()
    assert point.get_marker() == "o" and point.get_markersize() >= 5  # a single point is a visible dot
    _assert_readable(fig)


def test_an_explicit_title_wins_and_a_folder_without_config_has_none(tmp_path, kept):
    _write(tmp_path / "eval", "return", [(1000, 1.0), (2000, 2.0)])
    plot_learning_curve(tmp_path, tmp_path / "a.png")
    plot_learning_curve(tmp_path, tmp_path / "b.png", title="my run")
    assert kept[0]._suptitle is None and kept[1]._suptitle.get_text() == "my run"


def test_comparison_legend_is_outside_and_large_frame_counts_do_not_collide(tmp_path, kept):
    dirs = {}
    for i, agent in enumerate(("vid2act", "dreamerv2", "uniform_weights")):
        csv = _run_folder(tmp_path / agent, env="metaworld/door-lock", agent=agent, seed=0)
        _write(csv / "eval", "return", [(30_000 * k, 100.0 * k + i) for k in range(1, 11)])  # up to 300K frames
        _write(csv / "eval", "success", [(30_000 * k, min(1.0, 0.1 * k)) for k in range(1, 11)])
        dirs[f"{agent}: a long description of the run"] = csv
    plot_agent_comparison(dirs, tmp_path / "cmp.png", baselines={"random (137)": 137.0})
    (fig,) = kept
    assert fig.legends and all(ax.get_legend() is None for ax in fig.axes)  # one legend, below the panels
    _assert_readable(fig)
    title = fig._suptitle.get_text()  # from the run folders
    assert "metaworld/door-lock" in title and "vid2act vs dreamerv2 vs uniform_weights" in title and "seed 0" in title
    success = next(ax for ax in fig.axes if ax.get_title() == "eval/success")
    assert "success" in success.get_ylabel() and success.get_ylim()[1] <= 1.1


def test_readability_check_catches_colliding_tick_labels(tmp_path):
    """The check above can fail: raw 6-digit frame counts on a narrow panel overlap."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    fig, ax = plt.subplots(figsize=(2.0, 2.0))
    ax.plot([100_000, 1_000_000], [0, 1])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10))
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    ax.xaxis.set_major_formatter(formatter)
    with pytest.raises(AssertionError, match="overlap"):
        _assert_readable(fig)
    fig2, ax2 = plt.subplots(figsize=(3, 2))
    ax2.plot([0, 1], [0, 1], label="x")
    ax2.legend(loc="center")
    with pytest.raises(AssertionError, match="covers"):
        _assert_readable(fig2)
    plt.close("all")


def test_similarity_weights_figure_has_run_title_rates_and_an_outside_legend(tmp_path, kept):
    tasks = ["door-close", "handle-press"]
    csv = _run_folder(tmp_path / "run", env="metaworld/door-lock", agent="vid2act", seed=1)
    for task, w in zip(tasks, (0.3, 0.7)):
        _write(csv / "train" / "similarity_weight", task, [(1000, 0.5), (2000, w)])
        _write(csv / "train" / "selected_task_freq", task, [(2000, w)])  # one point
        _write(csv / "acting" / "selected_task_count", task, [(2000, 10 * w)])
    plot_similarity_weights(csv, tmp_path / "run" / "similarity_weights.png", tasks)
    (fig,) = kept
    assert "metaworld/door-lock | vid2act | seed 1" in fig._suptitle.get_text()
    weights, shares, counts = fig.axes
    for ax in (weights, shares):
        assert ax.get_xlabel() == "env frames" and "(0-1)" in ax.get_ylabel() and ax.get_ylim()[1] <= 1.1
    assert all(line.get_marker() == "o" for line in shares.get_lines())
    assert counts.get_ylabel() and counts.get_xlabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [*tasks, "uniform 1/N"]
    _assert_readable(fig)


def test_metric_labels_carry_units():
    assert metric_label("eval/return") == "return (sum of rewards)"
    assert metric_label("eval_return") == metric_label("train/episode_return") == "return (sum of rewards)"
    assert "0-1" in metric_label("eval/success") and is_rate("eval/success")
    assert metric_label("eval/length") == "episode length (env steps)"
    assert metric_label("train/similarity_weight/door-close").startswith("similarity weight")
    assert metric_label("train/loss_model_reco/door-close") == "loss" and not is_rate("eval/return")


def test_legend_below_lists_given_proxies_once_inside_the_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from vid2act.agents.plots import legend_below

    fig, ax = plt.subplots(figsize=(4.8, 3), layout="constrained")
    ax.plot([0, 1], label="not listed: handles replace the axes' artists")
    proxies = [Line2D([], [], label="vid2act"), Line2D([], [], label="vid2act"),
               Patch(label="IQM (tick) and its 95% bootstrap CI (bar)")]
    legend = legend_below(fig, handles=proxies)
    assert [t.get_text() for t in legend.get_texts()] == ["vid2act", "IQM (tick) and its 95% bootstrap CI (bar)"]
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # not cut at the figure's edges
    plt.close(fig)
