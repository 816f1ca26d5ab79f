"""DistillationLoss (Eq. 4): values by hand, reductions, gradients, keys, masks, errors."""
import math

import pytest
import torch
from tensordict import TensorDict

from vid2act.components.losses.distillation import DistillationLoss
from vid2act.components.transfer import DistillHead, SimilarityWeights

N, B, T, FT, FS = 3, 2, 4, 5, 3


def _batch(seed=0, teacher_grad=False, feature_grad=False):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(B, T, FS, generator=g).requires_grad_(feature_grad)
    s = torch.randn(B, T, N, FT, generator=g).requires_grad_(teacher_grad)
    return e, s, TensorDict({"feature": e, "teacher_feature": s}, [B, T])


def _eq4_by_hand(head, sim, e, s, floor=0.0):
    """sum_b sum_i sum_t w_t^i ||e_t - u_t^i||^2 with explicit loops (linear f_distill, f_weight)."""
    W, c = head.net[0].weight.detach(), head.net[0].bias.detach()
    a, d = sim.f_weight[0].weight[0].detach(), sim.f_weight[0].bias[0].detach()
    total = 0.0
    for b in range(B):
        for t in range(T):
            logits = [float(torch.dot(a, torch.cat([s[b, t, i], e[b, t]])) + d) for i in range(N)]
            z = sum(math.exp(x) for x in logits)
            for i in range(N):
                w = floor + (1 - N * floor) * math.exp(logits[i]) / z
                u = W @ s[b, t, i] + c
                total += w * sum(float(e[b, t, j] - u[j]) ** 2 for j in range(FS))
    return total


@pytest.mark.parametrize("floor", [0.0, 0.2])
def test_loss_equals_eq4_by_hand(floor):
    torch.manual_seed(0)
    head, sim = DistillHead(FT, FS), SimilarityWeights(FT, FS, N, weight_floor=floor)
    e, s, td = _batch()
    expected = _eq4_by_hand(head, sim, e, s, floor)
    with torch.no_grad():
        summed = DistillationLoss(head, sim, alpha=0.7, reduction="sum")(td)["loss_distill"]
        assert float(summed) == pytest.approx(0.7 * expected, rel=1e-5)
        mean = DistillationLoss(head, sim, alpha=0.7)(td)["loss_distill"]
        assert mean.shape == () and float(mean) == pytest.approx(0.7 * expected / (B * T), rel=1e-5)
        none = DistillationLoss(head, sim, reduction="none")(td)["loss_distill"]
        assert none.shape == (B, T) and float(none.sum()) == pytest.approx(expected, rel=1e-5)
        per_dim = DistillationLoss(head, sim, reduction="sum", feature_reduction="mean")(td)["loss_distill"]
        assert float(per_dim) == pytest.approx(expected / FS, rel=1e-5)


def test_uniform_weights_average_the_teacher_errors():
    head, sim = DistillHead(FT, FS), SimilarityWeights(FT, FS, N, mode="uniform")
    e, s, td = _batch()
    out = DistillationLoss(head, sim)(td)
    u = head(s.movedim(-2, 0))
    expected = ((e - u) ** 2).sum(-1).mean(0).mean()
    torch.testing.assert_close(out["loss_distill"], expected)
    torch.testing.assert_close(out["similarity_weights"], torch.full((N,), 1 / N))


def test_gradients_reach_student_head_and_weights_but_not_teachers():
    head = DistillHead(FT, FS, per_teacher=True, num_teachers=N, hidden_dims=(8,))
    sim = SimilarityWeights(FT, FS, N, hidden_dims=(8,))
    e, s, td = _batch(teacher_grad=True, feature_grad=True)
    DistillationLoss(head, sim)(td)["loss_distill"].backward()
    assert s.grad is None
    assert e.grad is not None and float(e.grad.abs().sum()) > 0
    for module in (head, sim):
        assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in module.parameters())


def test_student_feature_gets_gradient_through_an_mlp_f_weight():
    """Eq. 3 feeds e_t to f_weight: with an MLP the gradient differs from the one with w fixed."""
    head, sim = DistillHead(FT, FS), SimilarityWeights(FT, FS, N, hidden_dims=(8,))
    e, s, td = _batch(feature_grad=True)
    loss = DistillationLoss(head, sim)(td)["loss_distill"]
    (g_total,) = torch.autograd.grad(loss, e)
    w = sim(s.movedim(-2, 0), e).detach()
    u = head(s.movedim(-2, 0))
    (g_distance,) = torch.autograd.grad((w * ((e - u) ** 2).sum(-1)).sum(0).mean(), e)
    assert not torch.allclose(g_total, g_distance)


def test_linear_f_weight_ignores_the_student_feature():
    """A linear f_weight adds the same e_t term to every teacher's logit; softmax cancels it."""
    sim = SimilarityWeights(FT, FS, N)
    _, s, _ = _batch()
    s = s.movedim(-2, 0)
    torch.testing.assert_close(sim(s, torch.randn(B, T, FS)), sim(s, torch.randn(B, T, FS)))


def test_diagnostics_are_detached_distributions_over_teachers():
    head, sim = DistillHead(FT, FS), SimilarityWeights(FT, FS, N)
    out = DistillationLoss(head, sim)(_batch()[2])
    for key in ("similarity_weights", "distill_error", "selected_task_freq"):
        assert out[key].shape == (N,) and not out[key].requires_grad
    assert float(out["similarity_weights"].sum()) == pytest.approx(1.0, rel=1e-5)
    assert float(out["selected_task_freq"].sum()) == pytest.approx(1.0, rel=1e-5)
    assert 0 < float(out["similarity_entropy"]) <= math.log(N) + 1e-6


def test_set_keys_renames_the_inputs():
    loss = DistillationLoss(DistillHead(FT, FS), SimilarityWeights(FT, FS, N))
    e, s, td = _batch()
    expected = loss(td)["loss_distill"]
    loss.set_keys(feature="student", teacher_feature=("teachers", "state"))
    assert loss.in_keys == ["student", ("teachers", "state")]
    renamed = TensorDict({"student": e, "teachers": {"state": s}}, [B, T])
    torch.testing.assert_close(loss(renamed)["loss_distill"], expected)
    with pytest.raises(KeyError, match="student"):
        loss(td)
    with pytest.raises(ValueError, match="not an accepted"):
        loss.set_keys(student="x")


def test_collector_mask_drops_padded_positions():
    loss = DistillationLoss(DistillHead(FT, FS), SimilarityWeights(FT, FS, N, hidden_dims=(8,)))
    e, s, td = _batch()
    mask = torch.ones(B, T, 1, dtype=torch.bool)
    mask[1, 2:] = False
    e_nan = e.clone()
    e_nan[1, 2:] = float("nan")  # padded positions may hold garbage
    e_nan.requires_grad_(True)
    td.set("feature", e_nan)
    td.set(("collector", "mask"), mask)
    per_position = DistillationLoss(loss.distill_head, loss.similarity_weights, reduction="none")(
        TensorDict({"feature": e, "teacher_feature": s}, [B, T])
    )["loss_distill"]
    out = loss(td)
    torch.testing.assert_close(out["loss_distill"], per_position[mask[..., 0]].mean())
    assert bool(torch.isfinite(out["distill_error"]).all())
    out["loss_distill"].backward()
    assert bool(torch.isfinite(e_nan.grad).all()) and float(e_nan.grad[1, 2:].abs().sum()) == 0
    assert all(bool(torch.isfinite(p.grad).all()) for p in loss.parameters())


def test_bad_inputs_raise_clear_errors():
    loss = DistillationLoss(DistillHead(FT, FS), SimilarityWeights(FT, FS, N))
    e, s, _ = _batch()
    with pytest.raises(ValueError, match="teacher axis after the batch dims"):
        loss(TensorDict({"feature": e, "teacher_feature": s.movedim(-2, 0)}, []))
    e_nan = e.clone()
    e_nan[0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite values in input 'feature'"):
        loss(TensorDict({"feature": e_nan, "teacher_feature": s}, [B, T]))
    with pytest.raises(ValueError, match="reduction"):
        DistillationLoss(DistillHead(FT, FS), SimilarityWeights(FT, FS, N), reduction="max")
    with pytest.raises(ValueError, match="disagree"):
        DistillationLoss(DistillHead(FT, FS + 1), SimilarityWeights(FT, FS, N))
    with pytest.raises(TypeError):
        DistillationLoss(torch.nn.Linear(FT, FS), SimilarityWeights(FT, FS, N))


def test_from_teachers_sizes_the_networks_for_the_bank():
    from vid2act.components.transfer import TeacherBank
    from vid2act.components.world_model import make_world_model

    bank = TeacherBank(make_world_model("tiny", action_dim=2, label_dim=N, reward_head=False))
    loss = DistillationLoss.from_teachers(bank, FS, weight_hidden_dims=(7,), weight_floor=0.1, alpha=0.5,
                                          feature_key="emb")
    assert (loss.distill_head.teacher_dim, loss.distill_head.student_dim) == (bank.feature_dim, FS)
    assert loss.similarity_weights.num_teachers == N and loss.alpha == 0.5
    assert loss.tensor_keys.feature == "emb" and loss.in_keys == ["emb", "teacher_feature"]
    td = TensorDict({"emb": torch.randn(B, T, FS), "teacher_feature": torch.randn(B, T, N, bank.feature_dim)}, [B, T])
    assert loss(td)["similarity_weights"].min() >= 0.1 - 1e-6  # the floor reached SimilarityWeights
    assert DistillationLoss.from_teachers(bank, FS).tensor_keys.feature == "feature"


def test_docstring_examples_run_including_the_torchrl_agent_one():
    """The class docstring shows the lines a TorchRL agent adds (a rollout's ``action`` / ``is_init``)."""
    import doctest

    import vid2act.components.losses.distillation as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 15
    marked = [line for line in module.DistillationLoss.__doc__.splitlines() if line.rstrip().endswith("# +")
              or "  # + " in line]
    assert 1 <= len(marked) <= 5, marked
