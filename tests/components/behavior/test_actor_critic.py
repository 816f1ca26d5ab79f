"""Tests for the DreamerV2 actor and critic builders (vid2act.components.behavior)."""

import pytest
import torch
from tensordict import TensorDict
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import TruncatedNormal

from vid2act.components.behavior import TruncNormalParams, make_actor, make_value_model

FEATURE, ACTION, GUIDANCE = 10, 3, 4


def _batch(*batch, guidance=False):
    data = {"feature": torch.randn(*batch, FEATURE)}
    if guidance:
        data["guidance"] = torch.randn(*batch, GUIDANCE)
    return TensorDict(data, list(batch))


@pytest.mark.parametrize("batch", [(8,), (4, 5)])
@pytest.mark.parametrize("guidance", [False, True])
def test_actor_shapes_and_keys(batch, guidance):
    actor = make_actor(FEATURE, ACTION, guidance_dim=GUIDANCE if guidance else 0, hidden=16, layers=2)
    expected_in = ["feature", "guidance"] if guidance else ["feature"]
    assert actor.in_keys == expected_in
    with set_exploration_type(ExplorationType.RANDOM):
        out = actor(_batch(*batch, guidance=guidance))
    assert out["action"].shape == (*batch, ACTION)
    assert out["action_log_prob"].shape == batch
    assert out["loc"].shape == out["scale"].shape == (*batch, ACTION)
    assert out["action"].abs().max() <= 1.0
    assert actor.spec["action"].space.low.eq(-1).all() and actor.spec["action"].space.high.eq(1).all()
    # The stored log-probability is the distribution's log-probability of the stored action.
    dist = actor.get_dist(out.select(*expected_in))
    assert isinstance(dist, TruncatedNormal)
    torch.testing.assert_close(dist.log_prob(out["action"]), out["action_log_prob"])


def test_guided_actor_reads_guidance_and_requires_it():
    actor = make_actor(FEATURE, ACTION, guidance_dim=GUIDANCE, hidden=16, layers=2)
    td = _batch(6, guidance=True)
    loc_a = actor(td.clone())["loc"]
    td_b = td.clone()
    td_b["guidance"] = td_b["guidance"] + 1.0
    assert not torch.allclose(loc_a, actor(td_b)["loc"])
    with pytest.raises(KeyError):
        actor(_batch(6, guidance=False))


def test_actor_exploration_modes_and_std_bounds():
    actor = make_actor(FEATURE, ACTION, hidden=16, layers=2, min_std=0.3)
    td = _batch(64)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        a1, a2 = actor(td.clone())["action"], actor(td.clone())["action"]
    torch.testing.assert_close(a1, a2)
    with set_exploration_type(ExplorationType.RANDOM):
        r1, r2 = actor(td.clone())["action"], actor(td.clone())["action"]
    assert not torch.allclose(r1, r2)
    scale = actor(td.clone())["scale"]
    assert scale.min() > 0.3 and scale.max() < 2.3


def test_random_actions_are_reparameterised():
    actor = make_actor(FEATURE, ACTION, hidden=16, layers=2)
    with set_exploration_type(ExplorationType.RANDOM):
        actor(_batch(5))["action"].sum().backward()
    grads = [p.grad for p in actor.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_actor_and_critic_use_elu_and_optional_layer_norm():
    actor = make_actor(FEATURE, ACTION, hidden=16, layers=3)
    critic = make_value_model(FEATURE, hidden=16, layers=3, layer_norm=True)
    assert sum(isinstance(m, nn.ELU) for m in actor.modules()) == 3
    assert not any(isinstance(m, nn.LayerNorm) for m in actor.modules())
    assert sum(isinstance(m, nn.ELU) for m in critic.modules()) == 3
    assert sum(isinstance(m, nn.LayerNorm) for m in critic.modules()) == 3


@pytest.mark.parametrize("batch", [(7,), (4, 15)])
def test_value_model_shapes(batch):
    critic = make_value_model(FEATURE, hidden=16, layers=2)
    assert critic.in_keys == ["feature"] and critic.out_keys == ["state_value"]
    assert critic(_batch(*batch))["state_value"].shape == (*batch, 1)


def test_custom_keys():
    actor = make_actor(FEATURE, ACTION, hidden=8, layers=1, feature_key="e", action_key="a")
    critic = make_value_model(FEATURE, hidden=8, layers=1, feature_key="e", value_key="v")
    td = TensorDict({"e": torch.randn(3, FEATURE)}, [3])
    out = critic(actor(td))
    assert out["a"].shape == (3, ACTION) and out["a_log_prob"].shape == (3,) and out["v"].shape == (3, 1)


def _saturated_actor(dist):
    """An actor whose last layer outputs pre-tanh loc +10 (and a zero scale input) for every feature."""
    actor = make_actor(FEATURE, ACTION, hidden=8, layers=1, dist=dist)
    last = [m for m in actor.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[:ACTION] = 10.0
    return actor, last


def test_tanh_normal_actor_bounds_scale_and_deterministic_action():
    actor, _ = _saturated_actor("tanh_normal")
    with set_exploration_type(ExplorationType.RANDOM):
        out = actor(_batch(64))
    assert out["action"].abs().max() <= 1 and out["action_log_prob"].shape == (64,)
    torch.testing.assert_close(out["scale"], torch.full((64, ACTION), 5.0))  # DreamerV1 init_std at zero output
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        mode = actor(_batch(4))["action"]
    torch.testing.assert_close(mode, torch.tanh(5 * torch.tanh(torch.tensor(10.0 / 5))).expand(4, ACTION))


@pytest.mark.parametrize("dist, alive", [("trunc_normal", False), ("tanh_normal", True)])
def test_entropy_gradient_at_a_saturated_action_mean(dist, alive):
    """The reason for ``tanh_normal``: its entropy bonus still moves a saturated mean, the truncated normal's not."""
    from torchrl.modules.distributions.utils import has_analytic_entropy, rsample_and_log_prob

    torch.manual_seed(0)
    actor, last = _saturated_actor(dist)
    d = actor.get_dist(_batch(256))
    entropy = d.entropy() if has_analytic_entropy(d) else -rsample_and_log_prob(d)[1]
    entropy.mean().backward()
    pull = last.bias.grad[:ACTION]  # gradient ascent on the entropy moves the loc bias this way
    if alive:
        assert (pull < -1e-2).all()  # back towards the centre
    else:
        assert pull.abs().max() < 1e-6


def test_trunc_normal_params_mapping():
    mapping = TruncNormalParams(min_std=0.1)
    loc, scale = mapping(torch.tensor([[100.0, -100.0, 0.0, 100.0, -100.0, 0.0]]))
    torch.testing.assert_close(loc, torch.tensor([[1.0, -1.0, 0.0]]))
    torch.testing.assert_close(scale, torch.tensor([[2.1, 0.1, 1.1]]))
    with pytest.raises(ValueError, match="even"):
        mapping(torch.zeros(2, 5))


@pytest.mark.parametrize(
    "kwargs",
    [dict(feature_dim=0, action_dim=2), dict(feature_dim=4, action_dim=0), dict(feature_dim=4, action_dim=2, layers=0),
     dict(feature_dim=4, action_dim=2, guidance_dim=-1), dict(feature_dim=4, action_dim=2, min_std=0.0),
     dict(feature_dim=4, action_dim=2, dist="beta"),
     dict(feature_dim=4, action_dim=2, dist="tanh_normal", min_std=6.0)],
)
def test_actor_bad_arguments(kwargs):
    feature_dim, action_dim = kwargs.pop("feature_dim"), kwargs.pop("action_dim")
    with pytest.raises(ValueError):
        make_actor(feature_dim, action_dim, **kwargs)


def test_value_model_bad_arguments():
    with pytest.raises(ValueError, match="hidden"):
        make_value_model(4, hidden=0)

