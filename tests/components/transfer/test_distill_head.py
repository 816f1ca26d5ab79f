"""DistillHead (f_distill): shared / per-teacher maps from teacher to student feature space."""
import copy

import pytest
import torch
from torch import nn
from torchrl.modules import MLP

from vid2act.components.transfer import DistillHead

N, B, T, FT, FS = 3, 2, 4, 5, 6


def test_shared_linear_head_is_an_affine_map_applied_to_every_teacher():
    torch.manual_seed(0)
    head = DistillHead(FT, FS)
    x = torch.randn(N, B, T, FT)
    linear = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert len(linear) == 1  # linear by default
    expected = x @ linear[0].weight.T + linear[0].bias
    torch.testing.assert_close(head(x), expected)
    assert head(x[0, 0]).shape == (T, FS)  # a shared head accepts any leading dims


def test_per_teacher_head_equals_a_loop_over_teachers():
    torch.manual_seed(0)
    head = DistillHead(FT, FS, per_teacher=True, num_teachers=N, hidden_dims=(7,))
    x = torch.randn(N, B, T, FT)
    out = head(x)
    assert out.shape == (N, B, T, FS)
    reference = MLP(in_features=FT, out_features=FS, num_cells=[7], activation_class=nn.ELU)
    outs = []
    for i in range(N):
        net = copy.deepcopy(reference)
        head.params[i].to_module(net)
        outs.append(net(x[i]))
    torch.testing.assert_close(out, torch.stack(outs))
    # each teacher has its own parameters: applying teacher 0's net to every slice differs
    net0 = copy.deepcopy(reference)
    head.params[0].to_module(net0)
    assert not torch.allclose(out[1], net0(x[1]))


def test_per_teacher_gradients_reach_every_teacher_head():
    head = DistillHead(FT, FS, per_teacher=True, num_teachers=N, hidden_dims=(7,))
    head(torch.randn(N, B, T, FT)).pow(2).sum().backward()
    grads = [p.grad for p in head.parameters()]
    assert len(grads) == 4 and all(g is not None for g in grads)
    assert all(bool((g.flatten(1).abs().sum(1) > 0).all()) for g in grads)  # every teacher slice


def test_per_teacher_state_dict_roundtrip_and_deepcopy():
    torch.manual_seed(0)
    head = DistillHead(FT, FS, per_teacher=True, num_teachers=N)
    x = torch.randn(N, B, T, FT)
    state = head.state_dict()
    assert all(v.device.type != "meta" for v in state.values())
    other = DistillHead(FT, FS, per_teacher=True, num_teachers=N)
    assert not torch.allclose(other(x), head(x))
    other.load_state_dict(state)
    torch.testing.assert_close(other(x), head(x))
    clone = copy.deepcopy(head)
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(1.0)
    assert not torch.allclose(clone(x), head(x))  # the copy owns its parameters


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="num_teachers"):
        DistillHead(FT, FS, per_teacher=True)
    with pytest.raises(ValueError, match="positive"):
        DistillHead(0, FS)
    head = DistillHead(FT, FS, per_teacher=True, num_teachers=N)
    with pytest.raises(ValueError, match="last dim"):
        head(torch.randn(N, B, FT + 1))
    with pytest.raises(ValueError, match="N=3"):
        head(torch.randn(N + 1, B, FT))
    with pytest.raises(TypeError):
        head(torch.zeros(N, B, FT, dtype=torch.long))
