"""Run labels (env, agent, seed) read from a run folder: what figure titles name."""

from omegaconf import OmegaConf

from vid2act.agents.run_labels import RunLabels, comparison_title, run_labels, run_title


def _run(path, env, agent, seed, **agent_fields):
    path.mkdir(parents=True)
    OmegaConf.save({"env": {"name": env}, "agent": {"name": agent, **agent_fields}, "seed": seed}, path / "config.yaml")
    return path


def test_labels_and_titles_of_run_folders(tmp_path):
    a = _run(tmp_path / "a", "metaworld/door-lock", "vid2act", 0)
    b = _run(tmp_path / "b", "metaworld/door-lock", "dreamerv2", 1)
    c = _run(tmp_path / "c", "metaworld/door-lock", "vid2act", 2, weights="uniform")
    assert run_labels(a) == RunLabels("metaworld/door-lock", "vid2act", 0)
    assert run_labels(c).agent == "uniform_weights"  # the variant the config describes
    assert run_title(b, "context 5") == "metaworld/door-lock | dreamerv2 | seed 1 | context 5"
    assert comparison_title([a, b, tmp_path]) == "metaworld/door-lock | vid2act vs dreamerv2 | seeds 0, 1"
    assert comparison_title([a]) == "metaworld/door-lock | vid2act | seed 0"


def test_folders_that_do_not_say_give_none(tmp_path):
    assert run_labels(tmp_path) is None and run_title(tmp_path) is None and comparison_title([tmp_path]) is None
    OmegaConf.save({"data": "x", "layout": "mixture"}, tmp_path / "config.yaml")  # another job's config
    assert run_labels(tmp_path) is None


def test_teacher_checkpoint_of_runs_with_and_without_teachers(tmp_path):
    from vid2act.agents.run_labels import teacher_checkpoint, teachers_name

    a = _run(tmp_path / "a", "metaworld/door-lock", "vid2act", 0)
    cfg = OmegaConf.load(a / "config.yaml")
    cfg.teacher = "results/teachers_12k/teachers.pt"
    OmegaConf.save(cfg, a / "config.yaml")
    b = _run(tmp_path / "b", "metaworld/door-lock", "dreamerv2", 0)
    OmegaConf.save({**OmegaConf.to_container(OmegaConf.load(b / "config.yaml")), "teacher": "x/t.pt"}, b / "config.yaml")
    assert teacher_checkpoint(a) == "results/teachers_12k/teachers.pt" and teachers_name(teacher_checkpoint(a)) == "teachers_12k"
    assert teacher_checkpoint(b) is None and teacher_checkpoint(tmp_path / "missing") is None  # DreamerV2 loads none
