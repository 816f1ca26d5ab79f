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
