"""Tests for ImaginationActorLoss / ImaginationValueLoss (DreamerV2 behaviour learning, Vid2Act Eq. 8)."""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.objectives.utils import ValueEstimators

from vid2act.components.behavior import make_actor, make_value_model
from vid2act.components.losses.imagination import ImaginationActorLoss, ImaginationValueLoss

BELIEF, ACTION, EXTRA = 4, 2, 2
STATE = ACTION + EXTRA
FEATURE = BELIEF + STATE


class FakeWorldModel(nn.Module):
    """Implements the imagination protocol with tiny dynamics.

    ``b' = tanh(U [b, s, a])``, ``s' = [a, tanh(W [b, s, a])]``; the reward head is a
    linear layer initialised to read ``s[0]``, so the reward for arriving at ``s_{h+1}``
    is ``a_h[0]``: the reward prefers action ``+1`` in dimension 0.
    """

    def __init__(self):
        super().__init__()
        self.belief_net = nn.Linear(FEATURE + ACTION, BELIEF)
        self.state_net = nn.Linear(FEATURE + ACTION, EXTRA)
        self.reward_head = nn.Linear(FEATURE, 1)
        with torch.no_grad():
            self.reward_head.weight.zero_()
            self.reward_head.weight[0, BELIEF] = 1.0
            self.reward_head.bias.zero_()
        self.fixed_keys_seen = []

    def imagine(self, start, actor, horizon):
        fixed = start.exclude("belief", "state")
        belief, state = start["belief"], start["state"]
        steps = []
        for h in range(horizon + 1):
            feature = torch.cat([belief, state], -1)
            td = fixed.clone(False).update(
                {"belief": belief, "state": state, "feature": feature, "reward": self.reward_head(feature)}
            )
            self.fixed_keys_seen.append(sorted(fixed.keys()))
            td = actor(td)
            steps.append(td)
            if h < horizon:
                x = torch.cat([feature, td["action"]], -1)
                belief = torch.tanh(self.belief_net(x))
                state = torch.cat([td["action"], torch.tanh(self.state_net(x))], -1)
        return torch.stack(steps, dim=-1)


class ScriptedWorldModel:
    """Returns hand-made rewards; the feature's first entry is the value a ``FirstEntryCritic`` reads."""

    def __init__(self, reward, value):
        self.reward, self.value = reward, value  # [N, H+1, 1]

    def imagine(self, start, actor, horizon):
        n = start.batch_size[0]
        feature = torch.cat([self.value, torch.zeros(n, horizon + 1, FEATURE - 1)], -1)
        traj = TensorDict(
            {"feature": feature, "reward": self.reward, "belief": torch.zeros(n, horizon + 1, BELIEF),
             "state": torch.zeros(n, horizon + 1, STATE)},
            [n, horizon + 1],
        )
        return actor(traj)


class FirstEntry(nn.Module):
    def forward(self, feature):
        return feature[..., :1]


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors: one intra-op thread avoids contention on the shared CPU machine (30x faster here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(b=3, t=4, **extra):
    data = {"belief": torch.randn(b, t, BELIEF), "state": torch.randn(b, t, STATE), **extra}
    return TensorDict(data, [b, t])


def _value_loss(critic):
    """A value loss with its slow-critic updater attached (TorchRL warns on target params without one)."""
    loss = ImaginationValueLoss(critic)
    loss.make_target_updater()
    return loss


def _setup(horizon=5, **actor_kwargs):
    actor = make_actor(FEATURE, ACTION, hidden=32, layers=2)
    critic = make_value_model(FEATURE, hidden=32, layers=2)
    world_model = FakeWorldModel()
    value_loss = ImaginationValueLoss(critic)
    updater = value_loss.make_target_updater(period=100)
    actor_loss = ImaginationActorLoss(
        actor, value_loss.target_value_network, world_model, imagination_horizon=horizon, **actor_kwargs
    )
    return actor, critic, world_model, actor_loss, value_loss, updater


def _reference_lambda_returns(reward, value, gamma, lmbda):
    """Plain Python loop over rows: R_h = r_{h+1} + g((1-l) v_{h+1} + l R_{h+1}), R_H = v_H."""
    n, rows = reward.shape[0], reward.shape[1]
    horizon = rows - 1
    out = torch.zeros(n, horizon, 1, dtype=torch.float64)
    for i in range(n):
        next_return = float(value[i, horizon, 0])
        for h in reversed(range(horizon)):
            r_next, v_next = float(reward[i, h + 1, 0]), float(value[i, h + 1, 0])
            next_return = r_next + gamma * ((1 - lmbda) * v_next + lmbda * next_return)
            out[i, h, 0] = next_return
    return out


@pytest.mark.parametrize("gamma,lmbda", [(0.99, 0.95), (0.9, 0.0), (0.8, 1.0)])
def test_lambda_returns_match_reference_loop_end_to_end(gamma, lmbda):
    torch.manual_seed(0)
    n, horizon = 4, 6
    reward = torch.randn(n, horizon + 1, 1)
    value = torch.randn(n, horizon + 1, 1)
    critic = TensorDictModule(FirstEntry(), in_keys=["feature"], out_keys=["state_value"])
    actor = make_actor(FEATURE, ACTION, hidden=8, layers=1)
    loss = ImaginationActorLoss(
        actor, critic, ScriptedWorldModel(reward, value), imagination_horizon=horizon, gamma=gamma, lmbda=lmbda
    )
    _, imagined = loss(_batch(b=2, t=2))
    expected = _reference_lambda_returns(reward, value, gamma, lmbda)
    torch.testing.assert_close(imagined["lambda_target"].double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        imagined["discount_weight"][0, :, 0], gamma ** torch.arange(horizon, dtype=torch.float32)
    )
    # Hand-checked lambda = 0, H = 1 case: R_0 = r_1 + gamma v_1.
    if lmbda == 0.0:
        torch.testing.assert_close(imagined["lambda_target"][:, -1], reward[:, -1] + gamma * value[:, -1])


def test_lambda_target_method_matches_reference_and_td0():
    torch.manual_seed(1)
    reward, value = torch.randn(3, 9, 1), torch.randn(3, 9, 1)
    actor = make_actor(FEATURE, ACTION, hidden=8, layers=1)
    loss = ImaginationActorLoss(actor, make_value_model(FEATURE, hidden=8, layers=1), FakeWorldModel(),
                                gamma=0.97, lmbda=0.7)
    got = loss.lambda_target(reward[:, 1:], value[:, 1:])
    torch.testing.assert_close(got.double(), _reference_lambda_returns(reward, value, 0.97, 0.7), rtol=1e-5, atol=1e-5)
    loss.make_value_estimator(ValueEstimators.TD0)
    torch.testing.assert_close(loss.lambda_target(reward[:, 1:], value[:, 1:]), reward[:, 1:] + 0.97 * value[:, 1:])


def test_output_shapes_diagnostics_and_fixed_start_keys():
    torch.manual_seed(0)
    actor = make_actor(FEATURE, ACTION, guidance_dim=3, hidden=16, layers=2)
    critic = make_value_model(FEATURE, hidden=16, layers=2)
    world_model = FakeWorldModel()
    value_loss = ImaginationValueLoss(critic)
    value_loss.make_target_updater()
    guidance = torch.randn(3, 4, 3, requires_grad=True)
    loss = ImaginationActorLoss(actor, value_loss.target_value_network, world_model, imagination_horizon=5,
                                extra_start_keys=("guidance", "task_index"))
    batch = _batch(3, 4, guidance=guidance, task_index=torch.randint(0, 6, (3, 4)))
    losses, imagined = loss(batch)
    assert set(losses.keys()) == {"loss_actor", "actor_entropy", "imagined_return", "lambda_return", "target_value"}
    assert all(v.shape == () for v in losses.values())
    assert losses["loss_actor"].requires_grad and not any(losses[k].requires_grad for k in losses.keys() if k != "loss_actor")
    assert imagined.batch_size == (12, 5) and not imagined["feature"].requires_grad
    assert imagined["lambda_target"].shape == imagined["discount_weight"].shape == (12, 5, 1)
    # Extra start keys were present before every actor call and held fixed along the horizon.
    assert all(keys == ["guidance", "task_index"] for keys in world_model.fixed_keys_seen)
    torch.testing.assert_close(imagined["guidance"], guidance.detach().reshape(12, 1, 3).expand(12, 5, 3))
    torch.testing.assert_close(imagined["task_index"], batch["task_index"].reshape(12, 1).expand(12, 5))
    # Diagnostics agree with the hand-over.
    torch.testing.assert_close(losses["lambda_return"], imagined["lambda_target"].mean())
    losses["loss_actor"].backward()
    assert guidance.grad is None  # start states and fixed keys are detached


def test_actor_loss_gradients_reach_only_the_actor():
    torch.manual_seed(0)
    actor, critic, world_model, actor_loss, value_loss, _ = _setup()
    losses, _ = actor_loss(_batch())
    losses["loss_actor"].backward()
    actor_grads = [p.grad for p in actor.parameters()]
    assert all(g is not None for g in actor_grads) and sum(g.abs().sum() for g in actor_grads) > 0
    assert all(p.grad is None for p in world_model.parameters())
    assert all(p.grad is None for p in critic.parameters())
    # Frozen only for the loss: requires_grad is restored afterwards.
    assert all(p.requires_grad for p in world_model.parameters()) and all(p.requires_grad for p in critic.parameters())
    assert list(actor_loss.parameters()) == list(actor.parameters())


def test_actor_loss_with_online_critic_still_leaves_critic_untouched():
    torch.manual_seed(0)
    actor = make_actor(FEATURE, ACTION, hidden=16, layers=2)
    critic = make_value_model(FEATURE, hidden=16, layers=2)
    loss = ImaginationActorLoss(actor, critic, FakeWorldModel(), imagination_horizon=3, reinforce_mix=0.5)
    loss(_batch())[0]["loss_actor"].backward()
    assert all(p.grad is None for p in critic.parameters())
    assert all(p.grad is not None for p in actor.parameters())


def test_value_loss_gradients_reach_only_the_critic():
    torch.manual_seed(0)
    actor, critic, world_model, actor_loss, value_loss, _ = _setup()
    _, imagined = actor_loss(_batch())
    out = value_loss(imagined)
    assert set(out.keys()) == {"loss_value", "value_mean"}
    out["loss_value"].backward()
    assert all(p.grad is not None for p in critic.parameters())
    assert all(p.grad is None for p in actor.parameters())
    assert all(p.grad is None for p in world_model.parameters())
    assert all(not p.requires_grad for p in value_loss.target_value_network_params.values(True, True))
    assert {id(p) for p in value_loss.parameters()} == {id(p) for p in critic.parameters()}


def test_value_loss_is_weighted_squared_error():
    critic = make_value_model(FEATURE, hidden=8, layers=1)
    loss = ImaginationValueLoss(critic)
    loss.make_target_updater()
    td = TensorDict({"feature": torch.randn(5, 3, FEATURE), "lambda_target": torch.randn(5, 3, 1),
                     "discount_weight": torch.rand(5, 3, 1)}, [5, 3])
    prediction = critic(td.clone())["state_value"]
    expected = (td["discount_weight"] * (prediction - td["lambda_target"]) ** 2).mean()
    torch.testing.assert_close(loss(td)["loss_value"], expected)


def test_target_critic_lags_and_hard_update_copies():
    torch.manual_seed(0)
    actor, critic, world_model, actor_loss, value_loss, _ = _setup(horizon=3)
    updater = value_loss.make_target_updater(period=3)
    batch = _batch()
    optimizer = torch.optim.Adam(value_loss.parameters(), lr=1e-2)

    def targets():
        torch.manual_seed(123)
        with torch.no_grad():
            return actor_loss(batch)[1]["lambda_target"]

    before = targets()
    probe = TensorDict({"feature": torch.randn(7, FEATURE)}, [7])
    for step in range(1, 4):
        optimizer.zero_grad()
        value_loss(actor_loss(batch)[1])["loss_value"].backward()
        optimizer.step()
        online = critic(probe.clone())["state_value"]
        slow = value_loss.target_value_network(probe.clone())["state_value"]
        if step < 3:
            assert not torch.allclose(online, slow)  # online critic moved, slow critic lags
            torch.testing.assert_close(targets(), before)  # lambda targets come from the slow critic
        updater.step()
    torch.testing.assert_close(value_loss.target_value_network(probe.clone())["state_value"],
                               critic(probe.clone())["state_value"])
    assert not torch.allclose(targets(), before)


def test_set_keys_renames():
    torch.manual_seed(0)
    actor = make_actor(FEATURE, ACTION, hidden=16, layers=2)
    critic = make_value_model(FEATURE, hidden=16, layers=2, value_key="v")
    value_loss = ImaginationValueLoss(critic)
    value_loss.make_target_updater()
    value_loss.set_keys(value="v", lambda_target="ret", discount_weight="w")
    actor_loss = ImaginationActorLoss(actor, value_loss.target_value_network, FakeWorldModel(), imagination_horizon=3)
    actor_loss.set_keys(belief=("post", "belief"), state=("post", "z"), value="v", lambda_target="ret",
                        discount_weight="w")
    assert actor_loss.in_keys == [("post", "belief"), ("post", "z")]
    batch = TensorDict({"post": {"belief": torch.randn(2, 3, BELIEF), "z": torch.randn(2, 3, STATE)}}, [2, 3])
    _, imagined = actor_loss(batch)
    assert "ret" in imagined.keys() and "w" in imagined.keys() and "lambda_target" not in imagined.keys()
    value_loss(imagined)["loss_value"].backward()
    assert all(p.grad is not None for p in critic.parameters())
    with pytest.raises(KeyError, match="lambda_target"):
        _value_loss(make_value_model(FEATURE, hidden=8, layers=1))(imagined)
    with pytest.raises(KeyError, match="missing"):
        actor_loss(_batch())


def test_entropy_bonus_lowers_loss_by_weighted_entropy_and_raises_std():
    torch.manual_seed(0)
    actor, _, _, loss_plain, value_loss, _ = _setup(horizon=4, entropy_scale=0.0)
    scale = 0.5
    loss_bonus = ImaginationActorLoss(actor, value_loss.target_value_network, loss_plain.__dict__["world_model"],
                                      imagination_horizon=4, entropy_scale=scale)
    batch = _batch()
    torch.manual_seed(7)
    plain, imagined = loss_plain(batch)
    torch.manual_seed(7)
    bonus, _ = loss_bonus(batch)
    entropy = actor.get_dist(imagined.select("feature")).entropy().unsqueeze(-1)
    expected_shift = -scale * (imagined["discount_weight"] * entropy).mean()
    torch.testing.assert_close(bonus["loss_actor"] - plain["loss_actor"], expected_shift, rtol=1e-4, atol=1e-5)
    assert expected_shift < 0  # the truncated normal entropy is positive here

    # With a flat reward, the entropy bonus alone widens the policy.
    torch.manual_seed(0)
    actor, _, world_model, _, value_loss, _ = _setup()
    with torch.no_grad():
        world_model.reward_head.weight.zero_()
    loss = ImaginationActorLoss(actor, value_loss.target_value_network, world_model, imagination_horizon=3,
                                entropy_scale=1.0)
    probe = TensorDict({"feature": torch.randn(64, FEATURE)}, [64])
    scale_before = actor(probe.clone())["scale"].mean()
    optimizer = torch.optim.Adam(actor.parameters(), lr=1e-2)
    for _ in range(20):
        optimizer.zero_grad()
        loss(batch)[0]["loss_actor"].backward()
        optimizer.step()
    assert actor(probe.clone())["scale"].mean() > scale_before + 0.1


def test_reinforce_objective_matches_manual_computation():
    torch.manual_seed(0)
    actor, _, _, loss, value_loss, _ = _setup(horizon=4, reinforce_mix=1.0, entropy_scale=0.0)
    losses, imagined = loss(_batch())
    log_prob = actor.get_dist(imagined.select("feature")).log_prob(imagined["action"]).unsqueeze(-1)
    baseline = value_loss.target_value_network(imagined.select("feature"))["state_value"]
    advantage = imagined["lambda_target"] - baseline
    expected = -(imagined["discount_weight"] * log_prob * advantage).mean()
    torch.testing.assert_close(losses["loss_actor"], expected, rtol=1e-4, atol=1e-5)
    losses["loss_actor"].backward()
    assert all(p.grad is not None for p in actor.parameters())


@pytest.mark.parametrize("reinforce_mix", [0.0, 1.0])
def test_actor_learns_to_prefer_rewarded_action(reinforce_mix):
    """~200 Adam steps with both losses and the slow critic move the mean action of dim 0 toward +1."""
    torch.manual_seed(0)
    actor, critic, world_model, actor_loss, value_loss, _ = _setup(horizon=5, reinforce_mix=reinforce_mix)
    updater = value_loss.make_target_updater(period=20)
    actor_opt = torch.optim.Adam(actor_loss.parameters(), lr=3e-3)
    critic_opt = torch.optim.Adam(value_loss.parameters(), lr=3e-3)
    probe = TensorDict({"feature": torch.randn(256, FEATURE)}, [256])

    def mean_action():
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            return actor(probe.clone())["action"].mean(0)

    before = mean_action()
    for _ in range(200):
        batch = _batch(8, 4)
        losses, imagined = actor_loss(batch)
        actor_opt.zero_grad()
        losses["loss_actor"].backward()
        actor_opt.step()
        critic_opt.zero_grad()
        value_loss(imagined)["loss_value"].backward()
        critic_opt.step()
        updater.step()
    after = mean_action()
    assert abs(before[0]) < 0.3
    assert after[0] > 0.6, (before, after)
    assert abs(after[1]) < 0.5, (before, after)  # the unrewarded dimension is not pushed to a bound
    assert losses["imagined_return"] > 0.6 * 5 * 0.8


def test_non_finite_terms_are_named():
    torch.manual_seed(0)
    actor, _, world_model, loss, _, _ = _setup(horizon=2)
    with torch.no_grad():
        world_model.reward_head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="imagined reward"):
        loss(_batch())
    value_loss = _value_loss(make_value_model(FEATURE, hidden=8, layers=1))
    td = TensorDict({"feature": torch.randn(2, 3, FEATURE), "lambda_target": torch.full((2, 3, 1), float("inf")),
                     "discount_weight": torch.ones(2, 3, 1)}, [2, 3])
    with pytest.raises(FloatingPointError, match="lambda-return target"):
        value_loss(td)


def test_bad_inputs_raise_clear_errors():
    actor = make_actor(FEATURE, ACTION, hidden=8, layers=1)
    critic = make_value_model(FEATURE, hidden=8, layers=1)
    with pytest.raises(TypeError, match="imagine"):
        ImaginationActorLoss(actor, critic, object())
    with pytest.raises(TypeError, match="get_dist"):
        ImaginationActorLoss(critic, critic, FakeWorldModel())
    for kwargs in (dict(imagination_horizon=0), dict(gamma=0.0), dict(lmbda=1.5), dict(reinforce_mix=-0.1),
                   dict(entropy_scale=-1.0)):
        with pytest.raises(ValueError):
            ImaginationActorLoss(actor, critic, FakeWorldModel(), **kwargs)
    with pytest.raises(ValueError, match="loss_function"):
        ImaginationValueLoss(critic, loss_function="huber")
    with pytest.raises(ValueError, match="period"):
        ImaginationValueLoss(critic).make_target_updater(period=0)
    loss = ImaginationActorLoss(actor, critic, FakeWorldModel(), imagination_horizon=2)
    with pytest.raises(ValueError, match="batch dims"):
        loss(TensorDict({"belief": torch.randn(BELIEF), "state": torch.randn(STATE)}, []))

    class ShortWorldModel(FakeWorldModel):
        def imagine(self, start, actor, horizon):
            return super().imagine(start, actor, horizon - 1)

    with pytest.raises(ValueError, match=r"\[N, H \+ 1\]"):
        ImaginationActorLoss(actor, critic, ShortWorldModel(), imagination_horizon=2)(_batch())
    td = TensorDict({"feature": torch.randn(2, 3, FEATURE), "lambda_target": torch.randn(2, 3),
                     "discount_weight": torch.ones(2, 3)}, [2, 3])
    with pytest.raises(ValueError, match="same shape"):
        _value_loss(critic)(td)


def test_repr_and_keys():
    _, _, _, actor_loss, value_loss, _ = _setup()
    assert "ImaginationActorLoss" in repr(actor_loss) and "ImaginationValueLoss" in repr(value_loss)
    assert actor_loss.in_keys == ["belief", "state"]
    assert value_loss.in_keys == ["feature", "lambda_target", "discount_weight"]
    assert value_loss.out_keys == ["loss_value", "value_mean"]

