"""RSSM verbs: observe / obs_step consistency, is_first resets, the imagination protocol."""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal
from torchrl.objectives.utils import hold_out_net

from vid2act.components.world_model import RSSM, make_world_model

A, E, L = 2, 6, 3



def _rssm(latent="categorical", label_dim=0):
    torch.manual_seed(0)
    return RSSM(action_dim=A, embed_dim=E, belief_dim=8, hidden_dim=8, latent=latent,
                num_categoricals=3, num_classes=4, stoch_dim=5, label_dim=label_dim)


def _inputs(b, t, seed, label_dim=0):
    g = torch.Generator().manual_seed(seed)
    embed = torch.randn(b, t, E, generator=g)
    action = torch.randn(b, t, A, generator=g)
    is_first = torch.zeros(b, t, 1, dtype=torch.bool)
    is_first[:, 0] = True
    label = torch.eye(label_dim)[torch.randint(0, label_dim, (b,), generator=g)].unsqueeze(1).expand(b, t, label_dim) if label_dim else None
    return embed, action, is_first, label


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_observe_matches_repeated_obs_step(latent):
    rssm = _rssm(latent)
    embed, action, is_first, _ = _inputs(2, 4, seed=1)
    seq = rssm.observe(embed, action, is_first, sample=False)
    assert seq.batch_size == (2, 4)
    carried = rssm.initial([2])
    for t in range(4):
        step = rssm.obs_step(carried["belief"], carried["state"], action[:, t], embed[:, t], is_first[:, t], sample=False)
        assert (step == seq[:, t]).all()
        carried = step
    # and the posterior sample differs from the mode when sampling (it is stochastic)
    torch.manual_seed(3)
    sampled = rssm.observe(embed, action, is_first)
    if latent == "gaussian":
        assert not torch.allclose(sampled["state"], seq["state"])


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
@pytest.mark.parametrize("label_dim", [0, L])
def test_is_first_resets_to_initial_state(latent, label_dim):
    """Two sequences glued with is_first at the seam == the second one observed alone."""
    rssm = _rssm(latent, label_dim)
    e1, a1, f1, l1 = _inputs(2, 3, seed=1, label_dim=label_dim)
    e2, a2, f2, l2 = _inputs(2, 4, seed=2, label_dim=label_dim)
    a2[:, 0] = 5.0  # a stale previous action on the reset row must be ignored
    glued = rssm.observe(torch.cat([e1, e2], 1), torch.cat([a1, a2], 1), torch.cat([f1, f2], 1),
                         None if not label_dim else torch.cat([l1, l2], 1), sample=False)
    a2_clean = a2.clone()
    a2_clean[:, 0] = 0.0
    alone = rssm.observe(e2, a2_clean, f2, l2, sample=False)
    for key in alone.keys():
        torch.testing.assert_close(glued[key][:, 3:], alone[key], msg=key)
    # without the reset flag the history leaks through
    no_reset = torch.cat([f1, torch.zeros_like(f2)], 1)
    leaked = rssm.observe(torch.cat([e1, e2], 1), torch.cat([a1, a2], 1), no_reset,
                          None if not label_dim else torch.cat([l1, l2], 1), sample=False)
    assert not torch.allclose(leaked["belief"][:, 3], alone["belief"][:, 0])


def test_label_enters_the_prior():
    rssm = _rssm(label_dim=L)
    embed, action, is_first, label = _inputs(2, 3, seed=1, label_dim=L)
    a = rssm.observe(embed, action, is_first, label, sample=False)
    b = rssm.observe(embed, action, is_first, torch.roll(label, 1, -1), sample=False)
    assert not torch.allclose(a["prior_logits"], b["prior_logits"])
    with pytest.raises(ValueError, match="label_dim=3"):
        rssm.observe(embed, action, is_first)
    with pytest.raises(ValueError, match="label_dim=0"):
        _rssm().observe(embed, action, is_first, label)


def test_observe_input_errors():
    rssm = _rssm()
    embed, action, is_first, _ = _inputs(2, 3, seed=1)
    with pytest.raises(ValueError, match="prev_action"):
        rssm.observe(embed, action[..., :1], is_first)
    with pytest.raises(ValueError, match="is_first"):
        rssm.observe(embed, action, is_first[:, :2])
    with pytest.raises(ValueError, match="embed"):
        rssm.observe(embed[..., :4], action, is_first)
    with pytest.raises(ValueError, match=r"start\['belief'\]"):
        rssm.observe(embed, action, is_first, start=TensorDict(belief=torch.zeros(2, 7), state=torch.zeros(2, 12)))
    with pytest.raises(ValueError, match="latent"):
        RSSM(action_dim=A, embed_dim=E, latent="vq")


def _actor(feature_dim, action_dim):
    net = nn.Sequential(MLP(in_features=feature_dim, out_features=2 * action_dim, num_cells=[16]), NormalParamExtractor())
    module = TensorDictModule(net, in_keys=["feature"], out_keys=["loc", "scale"])
    return ProbabilisticActor(module, in_keys=["loc", "scale"], out_keys=["action"], distribution_class=TanhNormal,
                              return_log_prob=True)


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_imagine_protocol_shapes_keys_and_actor_gradients(latent):
    torch.manual_seed(0)
    wm = make_world_model("tiny", action_dim=A, latent=latent)
    actor = _actor(wm.feature_dim, A)
    H = 4
    start = wm.initial([3, 2]).apply(lambda x: x + torch.randn_like(x))
    start["task_index"] = torch.arange(6).view(3, 2)
    traj = wm.imagine(start, actor, H)
    assert traj.batch_size == (3, 2, H + 1)
    assert traj["action"].shape == (3, 2, H + 1, A)
    assert traj["reward"].shape == (3, 2, H + 1, 1)
    assert traj["action_log_prob"].shape == (3, 2, H + 1)
    assert traj["feature"].shape == (3, 2, H + 1, wm.feature_dim)
    assert torch.equal(traj["task_index"], start["task_index"].unsqueeze(-1).expand(3, 2, H + 1))
    assert torch.equal(traj["belief"][..., 0, :], start["belief"]) and torch.equal(traj["state"][..., 0, :], start["state"])
    torch.testing.assert_close(traj["reward"], wm.reward_head(traj["feature"]))
    # row h+1 is the prior stepped from row h with row h's action
    step = wm.rssm.img_step(traj["belief"][..., 1, :], traj["state"][..., 1, :], traj["action"][..., 1, :], sample=False)
    assert torch.allclose(step["belief"], traj["belief"][..., 2, :], atol=1e-6)
    # rewards of later rows depend on earlier actions: gradients reach every actor parameter
    traj["reward"][..., 1:, :].sum().backward()
    for name, p in actor.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert all(p.grad is not None for p in wm.rssm.prior_net.parameters())
    # with the model held out (actor loss), the actor still gets gradients and the model none
    actor.zero_grad()
    wm.zero_grad(set_to_none=True)
    with hold_out_net(wm):
        wm.imagine(start.detach(), actor, H)["reward"].sum().backward()
    assert all(p.grad is None for p in wm.parameters())
    assert all(p.grad.abs().sum() > 0 for p in actor.parameters())


def test_imagine_uses_label_and_validates():
    torch.manual_seed(0)
    wm = make_world_model("tiny", action_dim=A, label_dim=L, reward_head=False)
    actor = _actor(wm.feature_dim, A)
    start = wm.initial([4])
    start["task_label"] = torch.eye(L)[torch.tensor([0, 1, 2, 0])]
    traj = wm.imagine(start, actor, 2, sample=False)
    assert "reward" not in traj.keys() and torch.equal(traj["task_label"][:, 2], start["task_label"])
    with pytest.raises(ValueError, match="label_dim=3"):
        wm.imagine(wm.initial([4]), actor, 2)
    with pytest.raises(TypeError, match="horizon"):
        wm.imagine(start, actor, 2.0)
    with pytest.raises(ValueError, match="horizon"):
        wm.imagine(start, actor, -1)
    with pytest.raises(ValueError, match="did not write 'action'"):
        wm.imagine(start, lambda td: td, 1)
    with pytest.raises(TypeError, match="TensorDict"):
        wm.imagine({"belief": start["belief"]}, actor, 1)
    with pytest.raises(KeyError, match="state"):
        wm.imagine(start.exclude("state"), actor, 1)
    assert wm.imagine(start, actor, 0).batch_size == (4, 1)
