"""SimilarityWeights (Eq. 3): softmax over teachers, floor, uniform ablation, task selection."""
import pytest
import torch
from tensordict import TensorDict

from vid2act.components.losses.distillation import DistillationLoss
from vid2act.components.transfer import DistillHead, SimilarityWeights, SimilarityWeightsModule

N, B, T, FT, FS = 4, 3, 5, 6, 6


@pytest.fixture
def single_thread():
    """Tiny networks: one intra-op thread is much faster on a shared, loaded CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, B, T, FT, generator=g), torch.randn(B, T, FS, generator=g)


@pytest.mark.parametrize("floor", [0.0, 0.1, 0.24])
def test_weights_sum_to_one_and_respect_the_floor(floor):
    torch.manual_seed(0)
    sim = SimilarityWeights(FT, FS, N, weight_floor=floor, hidden_dims=(8,))
    with torch.no_grad():  # sharpen the logits so the floor is actually reached
        for p in sim.parameters():
            p.mul_(20.0)
    s, e = _inputs()
    with torch.no_grad():
        w = sim(s, e)
    assert w.shape == (N, B, T)
    torch.testing.assert_close(w.sum(0), torch.ones(B, T))
    assert bool((w >= floor - 1e-6).all())
    with torch.no_grad():
        expected = floor + (1 - N * floor) * torch.softmax(sim.logits(s, e), dim=0)
    torch.testing.assert_close(w, expected)
    if floor > 0:
        assert float(w.min()) < floor + 1e-3  # the floor binds somewhere


def test_logits_are_one_shared_network_on_the_concatenation():
    sim = SimilarityWeights(FT, FS, N)
    s, e = _inputs()
    (linear,) = [m for m in sim.modules() if isinstance(m, torch.nn.Linear)]
    for i in range(N):
        expected = torch.cat([s[i], e], -1) @ linear.weight[0] + linear.bias[0]
        torch.testing.assert_close(sim.logits(s, e)[i], expected)


@pytest.mark.parametrize("floor", [0.25, 0.3, -0.1])
def test_invalid_floor_raises(floor):
    with pytest.raises(ValueError, match="weight_floor"):
        SimilarityWeights(FT, FS, N, weight_floor=floor)


def test_uniform_mode_is_one_over_n_without_parameters():
    sim = SimilarityWeights(FT, FS, N, mode="uniform", weight_floor=0.1)
    assert list(sim.parameters()) == []
    s, e = _inputs()
    torch.testing.assert_close(sim(s, e), torch.full((N, B, T), 1.0 / N))


def test_select_task_is_argmax_over_teachers():
    w = torch.tensor([[[0.1, 0.7]], [[0.6, 0.2]], [[0.3, 0.1]]])  # [N=3, B=1, T=2]
    k = SimilarityWeights.select_task(w)
    assert k.dtype == torch.int64 and k.tolist() == [[1, 0]]
    assert SimilarityWeights.select_task(w[:, :, 0]).tolist() == [1]  # [N, B] -> [B]


def test_shape_and_mode_errors():
    with pytest.raises(ValueError, match="mode"):
        SimilarityWeights(FT, FS, N, mode="softmax")
    sim = SimilarityWeights(FT, FS, N)
    s, e = _inputs()
    with pytest.raises(ValueError, match="teacher axis first"):
        sim(s[:2], e)
    with pytest.raises(ValueError, match="batch dims"):
        sim(s, e[:, :2])
    with pytest.raises(ValueError, match="last dim"):
        sim(s, torch.randn(B, T, FS + 1))


def test_tensordict_module_keeps_teacher_axis_after_batch_dims():
    sim = SimilarityWeights(FT, FS, N)
    s, e = _inputs()
    td = TensorDict({"teacher_feature": s.movedim(0, -2), "feature": e}, [B, T])
    td = SimilarityWeightsModule(sim)(td)
    torch.testing.assert_close(td["similarity_weights"], sim(s, e).movedim(0, -1))
    torch.testing.assert_close(td["task_index"], sim.select_task(sim(s, e)))


def test_weights_move_to_the_teacher_closest_to_the_student(single_thread):
    """Train f_weight alone through Eq. 4: teacher 0 equals the student, teacher 1 is noisy."""
    torch.manual_seed(0)
    f = 4
    head = DistillHead(f, f)
    with torch.no_grad():  # fixed identity f_distill
        head.net[0].weight.copy_(torch.eye(f))
        head.net[0].bias.zero_()
    head.requires_grad_(False)
    sim = SimilarityWeights(f, f, 2, hidden_dims=(32,))
    loss_fn = DistillationLoss(head, sim)
    e = torch.randn(16, 8, f)
    teachers = torch.stack([e, e + 0.5 * torch.randn_like(e)], dim=-2)  # [B, T, N, F]
    td = TensorDict({"feature": e, "teacher_feature": teachers}, [16, 8])
    w_start = float(loss_fn(td)["similarity_weights"][0])
    opt = torch.optim.Adam(sim.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(td)["loss_distill"].backward()
        opt.step()
    out = loss_fn(td)
    assert w_start < 0.7
    assert float(out["similarity_weights"][0]) > 0.95
    assert float(out["selected_task_freq"][0]) > 0.95
