"""``vid2act.agents.collect``: the dataset records the env's render quality; appends of another are refused."""

import json

import pytest

from vid2act.agents.collect import check_append_quality, collect
from vid2act.components.data import OfflineDataset


def test_collect_records_render_quality_and_appends_the_same(tmp_path):
    out = tmp_path / "cartpole"
    summary = collect("dmc/cartpole-balance", str(out), episodes=1, max_episode_steps=3, render_quality="full",
                      progress=False)
    assert summary.episodes == 1 and OfflineDataset.open(out).render_quality == "full"
    collect("dmc/cartpole-balance", str(out), episodes=1, max_episode_steps=3, render_quality="full",
            progress=False, seed=1)
    assert OfflineDataset.open(out).episodes == 2


@pytest.mark.parametrize("stored, legacy", [("full", False), ("full", True), ("fast", False)])
def test_appending_another_quality_is_a_one_line_error_before_any_env(tmp_path, monkeypatch, stored, legacy):
    import vid2act.envs

    out = tmp_path / "ds"
    OfflineDataset.create(out, task="dmc/cartpole-balance", action_dim=1, behaviour_policy="random",
                          render_quality=stored)
    if legacy:  # a manifest written before the field: "full" frames
        manifest = json.loads((out / "manifest.json").read_text())
        del manifest["render_quality"]
        (out / "manifest.json").write_text(json.dumps(manifest))
    other = "fast" if stored == "full" else "full"

    def no_env(*args, **kwargs):
        raise AssertionError("an env was made before the render quality was checked")

    monkeypatch.setattr(vid2act.envs, "make_env", no_env)
    with pytest.raises(ValueError) as info:
        collect("dmc/cartpole-balance", str(out), episodes=1, render_quality=other, progress=False)
    message = str(info.value)
    assert "\n" not in message and str(out) in message
    assert f"render_quality={stored!r}" in message and f"render_quality={other!r}" in message
    assert f"env.render_quality={stored}" in message and "out=" in message
    check_append_quality(out, stored)  # the same quality is fine
    check_append_quality(tmp_path / "nothing-yet", other)  # so is a new dataset


def test_unknown_render_quality_is_refused(tmp_path):
    with pytest.raises(ValueError, match="render_quality must be one of"):
        collect("dmc/cartpole-balance", str(tmp_path / "x"), render_quality="ultra", progress=False)
    assert not (tmp_path / "x").exists()
