"""agent=finetune: the student world model starts from a pretrained teacher's weights."""
import copy

import pytest
import torch

from vid2act.agents.finetune import init_from_teacher, teacher_state_dict
from vid2act.components.transfer.teacher_bank import TeacherBank
from vid2act.components.world_model import make_world_model

N, A = 3, 4


def _student(preset="tiny"):
    torch.manual_seed(10)
    return make_world_model(preset, action_dim=A)


def _mixture_bank():
    torch.manual_seed(0)
    return TeacherBank(make_world_model("tiny", action_dim=A, label_dim=N, reward_head=False))


def _ensemble_bank():
    torch.manual_seed(1)
    models = [make_world_model("tiny", action_dim=A, reward_head=False) for _ in range(N)]
    return TeacherBank(models, layout="ensemble"), models


def _split(student_sd, teacher_sd):
    """Student keys the teacher has with the same shape, and the others."""
    fits = [k for k, v in student_sd.items() if k in teacher_sd and teacher_sd[k].shape == v.shape]
    return fits, [k for k in student_sd if k not in fits]


def test_mixture_teacher_weights_are_copied_where_they_fit():
    bank, student = _mixture_bank(), _student()
    fresh = copy.deepcopy(student.state_dict())
    teacher = {k: v.clone() for k, v in bank.model.state_dict().items()}
    copied, kept = init_from_teacher(student, bank)
    after = student.state_dict()
    fits, others = _split(after, teacher)
    assert (copied, kept) == (len(fits), len(others)) and copied > 20
    for key in fits:
        torch.testing.assert_close(after[key], teacher[key], rtol=0, atol=0, msg=key)
    assert sum(not torch.equal(after[k], fresh[k]) for k in fits if fresh[k].numel() > 1 and fresh[k].std() > 0) > 10
    # the label-conditioned input layers (image encoder, RSSM action input) and the reward head stay fresh
    assert "encoder.net.0.weight" in others and any(k.startswith("rssm.") for k in others)
    assert {k for k in others if k.startswith("reward_head.")} == {k for k in fresh if k.startswith("reward_head.")}
    for key in others:
        torch.testing.assert_close(after[key], fresh[key], rtol=0, atol=0, msg=key)
    # the bank is untouched and the student is still trainable
    torch.testing.assert_close(bank.model.state_dict(), teacher, rtol=0, atol=0)
    assert all(p.requires_grad for p in student.parameters())
    assert all(not p.requires_grad for p in bank.parameters())


def test_ensemble_teacher_index_picks_that_teachers_weights():
    bank, models = _ensemble_bank()
    student = _student()
    fresh = copy.deepcopy(student.state_dict())
    sd = teacher_state_dict(bank, 1)
    assert set(sd) == set(models[1].state_dict())
    copied, kept = init_from_teacher(student, bank, index=1)
    after = student.state_dict()
    assert kept == len([k for k in after if k.startswith("reward_head.")]) and copied == len(sd)
    for key, value in models[1].state_dict().items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0, msg=key)
    assert not torch.equal(after["encoder.net.0.weight"], models[0].state_dict()["encoder.net.0.weight"])
    for key in after:
        if key.startswith("reward_head."):
            torch.testing.assert_close(after[key], fresh[key], rtol=0, atol=0)
    for bad in (N, -1):
        with pytest.raises(IndexError, match="out of range"):
            teacher_state_dict(bank, bad)
        with pytest.raises(IndexError):
            init_from_teacher(_student(), bank, index=bad)


def test_student_of_another_preset_is_rejected_and_left_unchanged():
    bank = _mixture_bank()
    student = _student("small")
    fresh = copy.deepcopy(student.state_dict())
    with pytest.raises(ValueError, match="model preset"):
        init_from_teacher(student, bank)
    torch.testing.assert_close(student.state_dict(), fresh, rtol=0, atol=0)
    ensemble, _ = _ensemble_bank()
    with pytest.raises(ValueError, match="belief_dim"):
        init_from_teacher(make_world_model("small", action_dim=A), ensemble, index=2)


def test_finetuned_student_encodes_like_the_ensemble_teacher():
    bank, models = _ensemble_bank()
    student = _student()
    init_from_teacher(student, bank, index=2)
    pixels = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(student.encode(pixels), models[2].encode(pixels))
        torch.testing.assert_close(student.encode(pixels), bank.encode(pixels)[2], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("gru", ["layer_norm", "torch"])
def test_the_gru_cell_is_copied_when_teacher_and_student_share_it(gru):
    from vid2act.components.world_model import WorldModelConfig

    config = WorldModelConfig.from_preset("tiny", gru=gru)
    torch.manual_seed(0)
    bank = TeacherBank(config.build(action_dim=A, label_dim=N, reward_head=False))
    torch.manual_seed(10)
    student = config.build(action_dim=A)
    init_from_teacher(student, bank)
    cell = {k: v for k, v in bank.model.state_dict().items() if k.startswith("rssm.prior_net.rnn.")}
    assert len(cell) == 4
    for key, value in cell.items():
        torch.testing.assert_close(student.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_student_of_another_gru_is_rejected_and_left_unchanged():
    from vid2act.components.world_model import WorldModelConfig

    torch.manual_seed(0)
    bank = TeacherBank(WorldModelConfig.from_preset("tiny", gru="torch").build(action_dim=A, label_dim=N,
                                                                                reward_head=False))
    student = _student()  # the preset's layer_norm cell: its tensors have other names than nn.GRUCell's
    fresh = copy.deepcopy(student.state_dict())
    with pytest.raises(ValueError, match="set model.gru=torch"):
        init_from_teacher(student, bank)
    torch.testing.assert_close(student.state_dict(), fresh, rtol=0, atol=0)
