"""Which settings a resumed train run may change (the rest would make it another experiment)."""

import json

import pytest

from vid2act.agents.train import record_resume, resume_changes

SAVED = {"seed": 0, "batch_size": 16, "env_steps": 1000, "resume": False, "agent": {"model_lr": 1e-3},
         "logger": {"wandb": False}}


def test_resume_may_grow_the_budget_and_change_logging_and_records_it(tmp_path):
    current = {**SAVED, "env_steps": 2000, "resume": True, "logger": {"wandb": True}}
    changes = resume_changes(SAVED, current)
    assert changes == {"env_steps": (1000, 2000), "logger.wandb": (False, True)}
    record_resume(tmp_path, changes, env_frames=2000)
    line = json.loads((tmp_path / "resumes.jsonl").read_text())
    assert line["env_frames"] == 2000 and line["changed"]["env_steps"] == [1000, 2000]


@pytest.mark.parametrize("override", [{"batch_size": 32}, {"agent": {"model_lr": 3e-4}}, {"seed": 1}])
def test_resume_refuses_a_changed_training_setting(override):
    with pytest.raises(ValueError, match="changed training settings") as info:
        resume_changes(SAVED, {**SAVED, **override, "resume": True}, "run/config.yaml")
    assert "run/config.yaml" in str(info.value)
