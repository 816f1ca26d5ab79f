"""TeacherBank: N frozen teachers in one batched call equal a per-teacher loop; checks and checkpoints."""
import pytest
import torch
from tensordict import TensorDict
from torch.nn import functional as F

from vid2act.components.transfer.teacher_bank import TeacherBank, teacher_checkpoint
from vid2act.components.world_model import WorldModelConfig, make_world_model

N, B, T, A = 3, 2, 4, 4


def _mixture():
    torch.manual_seed(0)
    return make_world_model("tiny", action_dim=A, label_dim=N, reward_head=False)


def _ensemble():
    torch.manual_seed(1)
    return [make_world_model("tiny", action_dim=A, reward_head=False) for _ in range(N)]


def _bank(layout, **kw):
    models = _mixture() if layout == "mixture" else _ensemble()
    return TeacherBank(models, layout=layout, sample=False, **kw), models


def _teachers(layout, models):
    """``(model, label_fn)`` per teacher: ``label_fn(batch_shape)`` is the one-hot label or None."""
    if layout == "mixture":
        return [(models, lambda shape, i=i: F.one_hot(torch.tensor(i), N).float().expand(*shape, N))
                for i in range(N)]
    return [(m, lambda shape: None) for m in models]


def _inputs(*lead):
    g = torch.Generator().manual_seed(2)
    pixels = torch.randint(0, 256, (*lead, B, T, 3, 64, 64), dtype=torch.uint8, generator=g)
    action = torch.rand(*lead, B, T, A, generator=g) * 2 - 1
    is_first = torch.zeros(*lead, B, T, 1, dtype=torch.bool)
    is_first[..., 0, :] = True
    is_first[..., 1, 2, :] = True  # a reset inside the sequence of row 1
    return pixels, action, is_first


def _observe(model, label, pixels, action, is_first):
    lab = label(pixels.shape[:-3])
    return model.rssm.observe(model.encode(pixels, lab), action, is_first, lab, sample=False)["feature"]


layouts = pytest.mark.parametrize("layout", ["mixture", "ensemble"])


@layouts
def test_teacher_features_equal_a_loop_over_teachers(layout):
    bank, models = _bank(layout)
    pixels, action, is_first = _inputs()
    out = bank.teacher_features(pixels, action, is_first)
    assert out.shape == (N, B, T, bank.feature_dim) and bank.feature_dim == 96
    expected = torch.stack([_observe(m, lab, pixels, action, is_first) for m, lab in _teachers(layout, models)])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(out[0], out[1])  # the teachers differ
    # precomputed embeddings give the same features
    torch.testing.assert_close(bank.teacher_features(None, action, is_first, embed=bank.encode(pixels)), out)


@layouts
def test_source_features_pair_teacher_i_with_source_i(layout):
    bank, models = _bank(layout)
    pixels, action, is_first = _inputs(N)
    out = bank.source_features(pixels, action, is_first)
    assert out.shape == (N, B, T, bank.feature_dim)
    expected = torch.stack([_observe(m, lab, pixels[i], action[i], is_first[i])
                            for i, (m, lab) in enumerate(_teachers(layout, models))])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="N=3"):
        bank.source_features(pixels[:2], action[:2], is_first[:2])


@layouts
def test_obs_step_equals_a_loop_and_keeps_the_teacher_axis_after_the_batch(layout):
    bank, models = _bank(layout)
    pixels, action, _ = _inputs()
    pixels, action = pixels[:, 0], action[:, 0]
    is_first = torch.tensor([[True], [False]])
    belief, state = torch.randn(B, N, bank.belief_dim), torch.randn(B, N, bank.state_dim)
    out = bank.obs_step(belief, state, action, pixels, is_first)
    assert out.batch_size == (B, N) and out["feature"].shape == (B, N, bank.feature_dim)
    for i, (m, lab) in enumerate(_teachers(layout, models)):
        label = lab((B,))
        ref = m.rssm.obs_step(belief[:, i], state[:, i], action, m.encode(pixels, label), is_first, label,
                              sample=False)
        for key in ("belief", "state", "feature"):
            torch.testing.assert_close(out[key][:, i], ref[key], rtol=1e-4, atol=1e-4)
    first = bank.obs_step(None, None, action, pixels, is_first)  # None: initial state
    assert first["belief"].shape == (B, N, bank.belief_dim)


@layouts
def test_student_state_steps_every_teacher_prior_from_the_student_latent(layout):
    bank, models = _bank(layout, teacher_input="student_state")
    _, action, is_first = _inputs()
    belief = torch.randn(B, T, bank.belief_dim, requires_grad=True)
    state = torch.randn(B, T, bank.state_dim, requires_grad=True)
    out = bank.teacher_features(None, action, is_first, student_belief=belief, student_state=state)
    assert out.shape == (N, B, T, bank.feature_dim) and not out.requires_grad
    for i, (m, lab) in enumerate(_teachers(layout, models)):
        for t in range(T):
            b = belief[:, t - 1] if t else torch.zeros(B, bank.belief_dim)
            s = state[:, t - 1] if t else torch.zeros(B, bank.state_dim)
            reset = is_first[:, t]
            b, s, a = (torch.where(reset, 0.0, x) for x in (b, s, action[:, t]))
            ref = m.rssm.img_step(b.detach(), s.detach(), a, lab((B,)), sample=False)["feature"]
            torch.testing.assert_close(out[i, :, t], ref, rtol=1e-4, atol=1e-4)
    # prior_features: one step from a shared latent
    prior = bank.prior_features(belief[:, 1], state[:, 1], action[:, 2], is_first[:, 2])
    assert prior.shape == (N, B, bank.feature_dim)
    torch.testing.assert_close(prior, out[:, :, 2], rtol=1e-4, atol=1e-4)


@layouts
def test_teachers_are_frozen_and_leave_the_callers_model_alone(layout):
    bank, models = _bank(layout)
    caller = [models] if layout == "mixture" else models
    assert all(not p.requires_grad for p in bank.parameters()) and len(list(bank.parameters())) > 0
    assert all(p.requires_grad for m in caller for p in m.parameters())  # the caller's copy is untouched
    bank.train()
    assert not bank.training and not any(m.training for m in bank.modules())
    pixels, action, is_first = _inputs()
    action.requires_grad_(True)
    before = bank.teacher_features(pixels, action, is_first)
    assert not before.requires_grad
    assert not bank.obs_step(None, None, action[:, 0], pixels[:, 0], is_first[:, 0])["feature"].requires_grad
    with torch.no_grad():  # editing the caller's weights does not reach the bank
        for m in caller:
            for p in m.parameters():
                p.zero_()
    torch.testing.assert_close(bank.teacher_features(pixels, action, is_first), before)


@layouts
def test_narrower_actions_are_zero_padded_and_wider_ones_rejected(layout):
    bank, _ = _bank(layout)
    pixels, action, is_first = _inputs()
    narrow = action[..., :2]
    torch.testing.assert_close(bank.teacher_features(pixels, narrow, is_first),
                               bank.teacher_features(pixels, F.pad(narrow, (0, 2)), is_first))
    with pytest.raises(ValueError, match="action_dim=4"):
        bank.teacher_features(pixels, torch.zeros(B, T, A + 1), is_first)


def test_construction_errors():
    mixture = _mixture()
    bd, sd = mixture.rssm.belief_dim, mixture.rssm.state_dim
    with pytest.raises(ValueError, match="label_dim"):
        TeacherBank(make_world_model("tiny", action_dim=A, reward_head=False))  # mixture without label
    with pytest.raises(ValueError, match="architecture"):
        other = WorldModelConfig.from_preset("tiny", belief_dim=16).build(action_dim=A, reward_head=False)
        TeacherBank([*_ensemble()[:2], other], layout="ensemble")
    with pytest.raises(ValueError, match="source_tasks"):
        TeacherBank(mixture, source_tasks=["a", "b"])
    with pytest.raises(ValueError, match="state_dim"):
        TeacherBank(mixture, teacher_input="student_state", student_dims=(bd, sd + 1))
    bank = TeacherBank(mixture, teacher_input="student_state", student_dims=(bd, sd), source_tasks="abc")
    assert bank.source_tasks == ("a", "b", "c")
    _, action, is_first = _inputs()
    with pytest.raises(ValueError, match="belief_dim"):
        bank.teacher_features(None, action, is_first, student_belief=torch.zeros(B, T, bd + 1),
                              student_state=torch.zeros(B, T, sd))
    with pytest.raises(ValueError, match="belief_dim"):
        bank.prior_features(torch.zeros(B, bd - 1), torch.zeros(B, sd), action[:, 0])


@layouts
def test_forward_writes_teacher_features_after_the_time_axis(layout):
    bank, _ = _bank(layout)
    pixels, action, is_first = _inputs()
    td = TensorDict({"pixels": pixels, "prev_action": action, "is_first": is_first}, [B, T])
    out = bank(td)
    assert out is td and td["teacher_feature"].shape == (B, T, N, bank.feature_dim)
    expected = bank.teacher_features(pixels, action, is_first).movedim(0, -2)
    torch.testing.assert_close(td["teacher_feature"], expected)
    with pytest.raises(KeyError, match="pixels"):
        bank(td.exclude("pixels", "teacher_feature"))
    student = TeacherBank(_mixture(), teacher_input="student_state", sample=False)
    with pytest.raises(KeyError, match="belief"):
        student(td)


@layouts
def test_checkpoint_round_trip_gives_identical_features(layout, tmp_path):
    bank, models = _bank(layout)
    path = tmp_path / "teachers.pt"
    torch.save(teacher_checkpoint(models, layout=layout, source_tasks=["x", "y", "z"], action_dim=A, steps=7), path)
    loaded = TeacherBank.from_checkpoint(path, sample=False)
    assert loaded.layout == layout and loaded.num_teachers == N and loaded.source_tasks == ("x", "y", "z")
    assert loaded.metadata["steps"] == 7 and "weights" not in loaded.metadata
    pixels, action, is_first = _inputs()
    torch.testing.assert_close(loaded.teacher_features(pixels, action, is_first),
                               bank.teacher_features(pixels, action, is_first))


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        TeacherBank.from_checkpoint(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"a": 1}, foreign)
    with pytest.raises(ValueError, match="not a teacher checkpoint"):
        TeacherBank.from_checkpoint(foreign)
    good = tmp_path / "good.pt"
    torch.save(teacher_checkpoint(_mixture(), layout="mixture", source_tasks="abc", action_dim=A), good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot read"):
        TeacherBank.from_checkpoint(truncated)


# ------------------------------------------------------------------ TorchRL rollout keys (set_keys)
@layouts
def test_set_keys_reads_a_torchrl_rollout_action_and_is_init(layout):
    bank, _ = _bank(layout)
    pixels, action, _ = _inputs()  # action[t] = a_t, the action taken after o_t
    is_init = torch.zeros(B, T, 1, dtype=torch.bool)
    is_init[1, 2] = True  # an episode starts inside the slice of row 1
    bank.set_keys(action="action", is_init="is_init")
    assert bank.in_keys == ["pixels", "action", "is_init"] and bank.out_keys == ["teacher_feature"]
    td = TensorDict({"pixels": pixels, "action": action, "is_init": is_init}, [B, T])
    bank(td)
    # by hand: a_{t-1} is the action of the row before (zero on row 0), and row 0 starts a fresh filter
    prev_action = torch.cat([torch.zeros_like(action[:, :1]), action[:, :-1]], 1)
    is_first = is_init.clone()
    is_first[:, 0] = True
    expected = bank.teacher_features(pixels, prev_action, is_first).movedim(0, -2)
    torch.testing.assert_close(td["teacher_feature"], expected)
    # without the shift (a_t read as a_{t-1}) the features differ: the test can fail
    wrong = bank.teacher_features(pixels, action, is_first).movedim(0, -2)
    assert not torch.allclose(td["teacher_feature"], wrong)
    with pytest.raises(KeyError, match="is_init"):
        bank(td.exclude("is_init"))


def test_set_keys_renames_resets_and_rejects_unknown_names():
    bank = TeacherBank(_mixture(), sample=False)
    assert bank.in_keys == ["pixels", "prev_action", "is_first"]
    pixels, action, is_first = _inputs()
    bank.set_keys(pixels=("next", "pixels"), prev_action="a_prev", teacher_feature=("out", "s"))
    td = TensorDict({"next": {"pixels": pixels}, "a_prev": action, "is_first": is_first}, [B, T])
    bank(td)
    torch.testing.assert_close(td["out", "s"], bank.teacher_features(pixels, action, is_first).movedim(0, -2))
    bank.set_keys(pixels=None, prev_action=None, teacher_feature=None)  # None: back to the defaults
    assert bank.in_keys == ["pixels", "prev_action", "is_first"] and bank.out_keys == ["teacher_feature"]
    with pytest.raises(ValueError, match="prev_actions"):
        bank.set_keys(prev_actions="x")
    student = TeacherBank(_mixture(), teacher_input="student_state", sample=False)
    student.set_keys(action="action", is_init="is_init")
    assert student.in_keys == ["action", "is_init", "belief", "state"]


def test_a_mid_episode_slice_starts_from_the_initial_latent_with_its_recorded_prev_action():
    """What the class docstring says about slices without ``is_first[0]``."""
    bank = TeacherBank(_mixture(), sample=False)
    pixels, action, is_first = _inputs()
    mid = is_first.clone()
    mid[:, 0] = False
    fresh = bank.teacher_features(pixels, action, is_first)
    # a zero prev_action on row 0 makes the mid-episode slice exactly a fresh start (initial latent) ...
    zeroed = action.clone()
    zeroed[:, 0] = 0.0
    torch.testing.assert_close(bank.teacher_features(pixels, zeroed, mid), fresh)
    # ... the recorded a_{-1} only enters the first prior step: row 0 differs, the resets later do not
    out = bank.teacher_features(pixels, action, mid)
    assert not torch.allclose(out[:, :, 0], fresh[:, :, 0])
    torch.testing.assert_close(out[:, 1, 2:], fresh[:, 1, 2:])  # row 1 resets at t = 2


@layouts
def test_teacher_model_gives_each_teacher_alone_with_its_label(layout):
    bank, _ = _bank(layout)
    pixels, action, is_first = _inputs()
    batched = bank.teacher_features(pixels, action, is_first)
    for i in range(N):
        model, label = bank.teacher_model(i)
        assert (label is None) == (layout == "ensemble")
        lab = None if label is None else label.expand(*pixels.shape[:-3], N)
        alone = model.rssm.observe(model.encode(pixels, lab), action, is_first, lab, sample=False)["feature"]
        torch.testing.assert_close(alone, batched[i])
        assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(IndexError, match="outside"):
        bank.teacher_model(N)
