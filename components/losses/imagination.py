"""Behaviour learning in imagination: DreamerV2 actor and critic losses (Vid2Act Eq. 8).

Imagination protocol (what ``world_model`` must provide)::

    world_model.imagine(start: TensorDict, actor, horizon: int) -> TensorDict

``start`` has batch ``[*B]`` and keys ``"belief"``, ``"state"`` and any fixed
keys (e.g. ``"guidance"``, ``"task_index"``), which the model copies into every
step before calling ``actor``. At each step ``h = 0..H`` the step tensordict
holds ``"belief"``, ``"state"``, ``"feature" = cat[belief, state]``, the fixed
keys, the actor's outputs (``"action"`` ``[*B, A]``, ...) and ``"reward"``
``[*B, 1]`` = the reward head on step ``h``'s feature, i.e. the reward for
*arriving* at ``s_h``. For ``h < H`` the prior steps with that (reparameterised)
action. The result is stacked to batch ``[*B, H + 1]``.

Index convention. The reward at row ``h + 1`` belongs to the transition
``h -> h + 1`` taken with the action of row ``h``. The lambda-return of row
``h = 0..H-1`` (DreamerV2 Eq. 4 in this alignment) is::

    R^λ_h = r_{h+1} + γ ((1 - λ) v(s_{h+1}) + λ R^λ_{h+1}),     R^λ_H = v(s_H)

with ``v`` the slow target critic. Both the actor and the critic are trained
on rows ``0..H-1``, weighted by the detached cumulative discount
``w_h = γ^h``; row ``H`` is only the bootstrap.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules.distributions.utils import has_analytic_entropy, rsample_and_log_prob
from torchrl.objectives import HardUpdate, LossModule
from torchrl.objectives.utils import ValueEstimators, dispatch_value_estimator, distance_loss, hold_out_net
from torchrl.objectives.value import ValueEstimatorBase

__all__ = ["ImaginationActorLoss", "ImaginationValueLoss"]


def _check_finite(owner: str, loss: torch.Tensor, terms: dict[str, torch.Tensor | None]) -> None:
    """Raises ``FloatingPointError`` naming the first non-finite term if ``loss`` is not finite.

    Only ``loss`` is checked on the happy path (one device sync per forward).
    """
    if bool(torch.isfinite(loss)):
        return
    for name, value in terms.items():
        if value is not None and not bool(torch.isfinite(value).all()):
            raise FloatingPointError(f"{owner}: non-finite values in the {name}; the loss is {loss.item()}.")
    raise FloatingPointError(f"{owner}: the loss is non-finite ({loss.item()}).")


class _DetachedInputs(TensorDictModuleBase):
    """Calls ``actor`` on stop-gradient copies of its inputs, writing its outputs into the step.

    DreamerV2 and V3 imagine with ``policy(sg(feat))``: the action still carries
    the gradient of the policy parameters into the dynamics, but no gradient
    flows back through the policy's input state.
    """

    def __init__(self, actor: TensorDictModuleBase) -> None:
        super().__init__()
        self.__dict__["actor"] = actor  # not registered: the loss owns the actor
        self.in_keys = list(actor.in_keys)
        self.out_keys = list(actor.out_keys)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        actor = self.__dict__["actor"]
        out = actor(tensordict.select(*self.in_keys).detach())
        return tensordict.update(out.exclude(*self.in_keys))


class _TargetValueNetwork(TensorDictModuleBase):
    """The value network evaluated with the slow target parameters of an :class:`ImaginationValueLoss`."""

    def __init__(self, owner: ImaginationValueLoss) -> None:
        super().__init__()
        self.__dict__["owner"] = owner  # not registered: owns no parameters
        self.in_keys = list(owner.value_network.in_keys)
        self.out_keys = list(owner.value_network.out_keys)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        owner = self.__dict__["owner"]
        with owner.target_value_network_params.to_module(owner.value_network, preserve_module_state=False):
            return owner.value_network(tensordict)


class ImaginationActorLoss(LossModule):
    """DreamerV2 actor loss in the world model's imagination (Vid2Act Eq. 8, actor part).

    The detached posterior states of a ``[B, T]`` batch are flattened into
    ``N = B * T`` start states; the world model imagines ``H`` steps with the
    actor (the world model and the critic are held out of the graph with
    :func:`~torchrl.objectives.utils.hold_out_net`; actor inputs are
    stop-gradient as in DreamerV2, so the gradient reaches the actor through
    its reparameterised actions and the dynamics). With lambda-returns
    ``R^λ_h`` from TorchRL's value estimator (TD(λ) by default, see the module
    docstring for the index convention) bootstrapped with ``value_network``
    (pass the slow target critic
    :attr:`ImaginationValueLoss.target_value_network`), the loss is::

        L = -mean_{n, h<H} w_h [ (1 - ρ) R^λ_h
                                 + ρ log π(a_h | s_h) sg(R^λ_h - v(s_h))
                                 + η H[π(· | s_h)] ],      w_h = γ^h (detached)

    ``ρ = reinforce_mix`` (0: pure dynamics backpropagation, DreamerV2's choice
    for continuous actions), ``η = entropy_scale``. The policy terms use
    ``π(· | sg(s_h))`` and the entropy is analytic when the distribution has
    one (the :func:`~vid2act.components.behavior.make_actor` truncated normal
    does), else ``-log π`` of one reparameterised sample.

    ``forward`` returns ``(losses, imagined)`` like TorchRL's
    ``DreamerActorLoss``: ``losses`` is a TensorDict of ``loss_actor`` and
    detached diagnostics; ``imagined`` is the detached trajectory rows
    ``0..H-1`` (batch ``[N, H]``) with ``lambda_target`` and
    ``discount_weight`` ``[N, H, 1]`` added, the input of
    :class:`ImaginationValueLoss` (no second imagination).

    The world model and ``value_network`` are held by reference, not registered
    as submodules: ``loss.parameters()`` are the actor's only.

    Args:
        actor_network (ProbabilisticTensorDictSequential): the policy, e.g. from
            :func:`~vid2act.components.behavior.make_actor`; must have
            ``get_dist`` and write ``tensor_keys.action``.
        value_network (TensorDictModuleBase): critic used for the bootstrap
            values and the REINFORCE baseline; reads the trajectory (``"feature"``)
            and writes ``tensor_keys.value`` ``[N, H + 1, 1]``.
        world_model: any object with ``imagine(start, actor, horizon)``
            following the imagination protocol (module docstring); when it is
            an ``nn.Module`` its parameters are frozen during imagination.

    Keyword Args:
        imagination_horizon (int): ``H``, imagined steps per start. Default ``15``.
        gamma (float): discount ``γ``. Default ``0.99``.
        lmbda (float): ``λ`` of the lambda-return. Default ``0.95``.
        reinforce_mix (float): ``ρ`` in ``[0, 1]``. Default ``0.0``.
        entropy_scale (float): ``η >= 0`` (nats). Default ``1e-4``.
        extra_start_keys (sequence of NestedKey): further entries of the input
            copied (detached, flattened) into ``start`` and held fixed over the
            horizon, e.g. ``("guidance",)`` for Vid2Act's guided actor or
            ``("task_index",)``. Default ``()``.

    Raises:
        TypeError: if ``actor_network`` has no ``get_dist`` or ``world_model``
            no callable ``imagine``.
        ValueError: on out-of-range hyperparameters; in ``forward``, if the input
            has no batch dimension or the imagined trajectory has the wrong
            batch size or a reward/value without a trailing dim of 1.
        KeyError: in ``forward``, if a start key is missing from the input.
        FloatingPointError: in ``forward``, if the loss is not finite (the
            message names the offending term).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from tensordict import TensorDict
        >>> from vid2act.components.behavior import make_actor, make_value_model
        >>> from vid2act.components.losses.imagination import ImaginationActorLoss, ImaginationValueLoss
        >>> class ToyWorldModel(nn.Module):  # implements the imagination protocol
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.prior = nn.Linear(3 + 2 + 1, 3 + 2)
        ...         self.reward_head = nn.Linear(3 + 2, 1)
        ...     def imagine(self, start, actor, horizon):
        ...         fixed, belief, state = start.exclude("belief", "state"), start["belief"], start["state"]
        ...         steps = []
        ...         for h in range(horizon + 1):
        ...             feature = torch.cat([belief, state], -1)
        ...             td = fixed.clone(False).update(
        ...                 {"belief": belief, "state": state, "feature": feature, "reward": self.reward_head(feature)})
        ...             steps.append(actor(td))
        ...             if h < horizon:
        ...                 nxt = torch.tanh(self.prior(torch.cat([feature, td["action"]], -1)))
        ...                 belief, state = nxt.split([3, 2], -1)
        ...         return torch.stack(steps, dim=-1)
        >>> actor = make_actor(5, 1, hidden=16, layers=2)
        >>> value_loss = ImaginationValueLoss(make_value_model(5, hidden=16, layers=2))
        >>> updater = value_loss.make_target_updater(period=100)
        >>> actor_loss = ImaginationActorLoss(actor, value_loss.target_value_network, ToyWorldModel(),
        ...                                   imagination_horizon=4)
        >>> batch = TensorDict({"belief": torch.randn(2, 3, 3), "state": torch.randn(2, 3, 2)}, [2, 3])
        >>> losses, imagined = actor_loss(batch)
        >>> losses["loss_actor"].backward()
        >>> imagined.batch_size, imagined["lambda_target"].shape
        (torch.Size([6, 4]), torch.Size([6, 4, 1]))
        >>> value_loss(imagined)["loss_value"].backward()
        >>> updater.step()
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable tensordict keys.

        Attributes:
            belief (NestedKey): input posterior belief ``[B, T, D_b]``; written
                as ``"belief"`` into the imagination start. Default ``"belief"``.
            state (NestedKey): input posterior stochastic state ``[B, T, D_s]``;
                written as ``"state"`` into the start. Default ``"state"``.
            reward (NestedKey): imagined reward ``[N, H + 1, 1]``. Default ``"reward"``.
            action (NestedKey): imagined action ``[N, H + 1, A]``. Default ``"action"``.
            value (NestedKey): critic output. Default ``"state_value"``.
            lambda_target (NestedKey): output lambda-returns. Default ``"lambda_target"``.
            discount_weight (NestedKey): output weights ``w_h``. Default ``"discount_weight"``.
        """

        belief: NestedKey = "belief"
        state: NestedKey = "state"
        reward: NestedKey = "reward"
        action: NestedKey = "action"
        value: NestedKey = "state_value"
        lambda_target: NestedKey = "lambda_target"
        discount_weight: NestedKey = "discount_weight"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    default_value_estimator = ValueEstimators.TDLambda
    SUPPORTED_VALUE_ESTIMATORS = (ValueEstimators.TD0, ValueEstimators.TD1, ValueEstimators.TDLambda)

    def __init__(
        self,
        actor_network: TensorDictModuleBase,
        value_network: TensorDictModuleBase,
        world_model,
        *,
        imagination_horizon: int = 15,
        gamma: float = 0.99,
        lmbda: float = 0.95,
        reinforce_mix: float = 0.0,
        entropy_scale: float = 1e-4,
        extra_start_keys: Sequence[NestedKey] = (),
    ) -> None:
        super().__init__()
        if not callable(getattr(actor_network, "get_dist", None)):
            raise TypeError(
                f"ImaginationActorLoss: actor_network must be a probabilistic TensorDict module with get_dist "
                f"(e.g. vid2act.components.behavior.make_actor), got {type(actor_network).__name__}."
            )
        if not callable(getattr(world_model, "imagine", None)):
            raise TypeError(
                f"ImaginationActorLoss: world_model must provide imagine(start, actor, horizon), "
                f"got {type(world_model).__name__}."
            )
        if not isinstance(imagination_horizon, int) or isinstance(imagination_horizon, bool) or imagination_horizon < 1:
            raise ValueError(f"ImaginationActorLoss: imagination_horizon must be an int >= 1, got {imagination_horizon!r}.")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"ImaginationActorLoss: gamma must be in (0, 1], got {gamma}.")
        if not 0.0 <= lmbda <= 1.0:
            raise ValueError(f"ImaginationActorLoss: lmbda must be in [0, 1], got {lmbda}.")
        if not 0.0 <= reinforce_mix <= 1.0:
            raise ValueError(f"ImaginationActorLoss: reinforce_mix must be in [0, 1], got {reinforce_mix}.")
        if entropy_scale < 0:
            raise ValueError(f"ImaginationActorLoss: entropy_scale must be >= 0, got {entropy_scale}.")
        self.actor_network = actor_network
        # Held by reference (not submodules): their parameters belong to other losses.
        self.__dict__["value_network"] = value_network
        self.__dict__["world_model"] = world_model
        self.__dict__["_policy"] = _DetachedInputs(actor_network)
        self.imagination_horizon = imagination_horizon
        self.gamma = float(gamma)
        self.lmbda = float(lmbda)
        self.reinforce_mix = float(reinforce_mix)
        self.entropy_scale = float(entropy_scale)
        self.extra_start_keys = list(extra_start_keys)
        self.make_value_estimator(self.default_value_estimator)

    @property
    def in_keys(self) -> list[NestedKey]:
        """Keys read from the input batch."""
        return [self.tensor_keys.belief, self.tensor_keys.state, *self.extra_start_keys]

    @property
    def out_keys(self) -> list[str]:
        """Entries of the ``losses`` output."""
        return ["loss_actor", "actor_entropy", "imagined_return", "lambda_return", "target_value"]

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        if self._value_estimator is not None:
            self._value_estimator.set_keys(value=self._tensor_keys.value)

    def make_value_estimator(self, value_type: ValueEstimators | None = None, **hyperparams) -> None:
        """Sets the return estimator: ``TDLambda`` (default), ``TD1`` or ``TD0``.

        ``gamma`` (and ``lmbda`` for TD(λ)) default to the constructor values;
        the discount weights ``w_h`` use the estimator's ``gamma``.
        """
        if value_type is None:
            value_type = self.default_value_estimator
        if isinstance(value_type, ValueEstimatorBase) or (
            isinstance(value_type, type) and issubclass(value_type, ValueEstimatorBase)
        ):
            return LossModule.make_value_estimator(self, value_type, **hyperparams)
        hyperparams.setdefault("gamma", self.gamma)
        if value_type == ValueEstimators.TDLambda:
            hyperparams.setdefault("lmbda", self.lmbda)
            # TorchRL's vectorised TD(λ) truncates its filter at (γλ)^k < 1e-7 and raises an IndexError
            # when even k = 1 falls below that (λ ≈ 0); the sequential loop is exact there.
            hyperparams.setdefault("vectorized", float(hyperparams["gamma"]) * float(hyperparams["lmbda"]) > 1e-6)
        dispatch_value_estimator(
            self,
            value_type,
            supported=self.SUPPORTED_VALUE_ESTIMATORS,
            tensor_keys={"value": self.tensor_keys.value, "value_target": "value_target"},
            value_network=None,
            **hyperparams,
        )

    def lambda_target(self, next_reward: torch.Tensor, next_value: torch.Tensor) -> torch.Tensor:
        """Returns ``R^λ_h`` ``[N, H, 1]`` from ``r_{h+1}`` and ``v(s_{h+1})``, both ``[N, H, 1]`` (rows ``1..H``).

        ``R^λ_h = r_{h+1} + γ((1 - λ) v(s_{h+1}) + λ R^λ_{h+1})``, ``R^λ_H = v(s_H)``,
        computed by the loss's TorchRL value estimator (no terminations in
        imagination). Differentiable in both inputs.
        """
        estimator = self.value_estimator
        keys = estimator.tensor_keys
        no_done = torch.zeros(next_reward.shape, dtype=torch.bool, device=next_reward.device)
        data = TensorDict(
            {("next", keys.reward): next_reward, ("next", keys.done): no_done, ("next", keys.terminated): no_done},
            batch_size=next_reward.shape[:-1],
        )
        return estimator.value_estimate(data, next_value=next_value, time_dim=data.ndim - 1)

    def _start_states(self, tensordict: TensorDictBase) -> TensorDictBase:
        if tensordict.batch_dims < 1:
            raise ValueError(
                "ImaginationActorLoss: the input needs batch dims (e.g. [B, T]) to flatten into start states, "
                f"got batch_size {tuple(tensordict.batch_size)}."
            )
        names = {"belief": self.tensor_keys.belief, "state": self.tensor_keys.state}
        names.update({key: key for key in self.extra_start_keys})
        present = set(tensordict.keys(include_nested=True))
        missing = [key for key in names.values() if key not in present]
        if missing:
            raise KeyError(f"ImaginationActorLoss: start keys {missing} are missing from the input tensordict.")
        start = TensorDict({name: tensordict.get(key) for name, key in names.items()}, batch_size=tensordict.batch_size)
        return start.detach().reshape(-1)

    def forward(self, tensordict: TensorDictBase) -> tuple[TensorDictBase, TensorDictBase]:
        """Imagines from the batch's posterior states and computes the actor loss.

        Args:
            tensordict (TensorDictBase): batch ``[B, T]`` (any batch dims) with
                ``tensor_keys.belief``, ``tensor_keys.state`` and the extra start keys.

        Returns:
            ``(losses, imagined)``: ``losses`` holds ``loss_actor`` and the detached
            diagnostics ``actor_entropy`` (nats, mean over ``N x H``),
            ``imagined_return`` (mean over starts of the undiscounted imagined
            reward sum ``r_1 + ... + r_H``), ``lambda_return`` (mean ``R^λ_h``),
            ``target_value`` (mean critic value over rows ``0..H``);
            ``imagined`` is the detached batch-``[N, H]`` hand-over for
            :class:`ImaginationValueLoss`.
        """
        start = self._start_states(tensordict)
        n, horizon = start.batch_size[0], self.imagination_horizon
        world_model, critic = self.__dict__["world_model"], self.__dict__["value_network"]
        frozen = hold_out_net(world_model) if isinstance(world_model, nn.Module) else nullcontext()
        with frozen, set_exploration_type(ExplorationType.RANDOM):
            traj = world_model.imagine(start, self.__dict__["_policy"], horizon)
        if tuple(traj.batch_size) != (n, horizon + 1):
            raise ValueError(
                f"ImaginationActorLoss: world_model.imagine returned batch_size {tuple(traj.batch_size)}, "
                f"expected {(n, horizon + 1)} ([N, H + 1])."
            )
        with hold_out_net(critic):
            values = critic(traj.select(*critic.in_keys)).get(self.tensor_keys.value)
        reward = traj.get(self.tensor_keys.reward)
        for name, tensor in (("reward", reward), ("value", values)):
            if tensor.shape != (n, horizon + 1, 1):
                raise ValueError(
                    f"ImaginationActorLoss: imagined {name} has shape {tuple(tensor.shape)}, expected {(n, horizon + 1, 1)}."
                )
        # Row h+1 holds the reward and value of the transition h -> h+1.
        lambda_target = self.lambda_target(reward[:, 1:], values[:, 1:])
        gamma = self.value_estimator.gamma.to(lambda_target)
        weight = torch.cat(
            [torch.ones_like(lambda_target[:, :1]), gamma.expand_as(lambda_target[:, 1:])], dim=1
        ).cumprod(dim=1)

        acted = traj[:, :horizon]
        dist = self.actor_network.get_dist(acted.select(*self.actor_network.in_keys).detach())
        if has_analytic_entropy(dist):
            entropy = dist.entropy()
        else:
            entropy = -rsample_and_log_prob(dist)[1]
        entropy = entropy.reshape(n, horizon, 1)
        objective = lambda_target
        log_prob = None
        if self.reinforce_mix > 0:
            log_prob = dist.log_prob(acted.get(self.tensor_keys.action).detach()).reshape(n, horizon, 1)
            advantage = (lambda_target - values[:, :horizon]).detach()
            objective = (1 - self.reinforce_mix) * lambda_target + self.reinforce_mix * log_prob * advantage
        objective = objective + self.entropy_scale * entropy
        loss_actor = -(weight * objective).mean()
        _check_finite(
            type(self).__name__,
            loss_actor,
            {"imagined reward": reward, "critic value": values, "lambda-return": lambda_target,
             "actor entropy": entropy, "REINFORCE log-probability": log_prob},
        )
        losses = TensorDict(
            {
                "loss_actor": loss_actor,
                "actor_entropy": entropy.detach().mean(),
                "imagined_return": reward[:, 1:].detach().sum(1).mean(),
                "lambda_return": lambda_target.detach().mean(),
                "target_value": values.detach().mean(),
            },
            batch_size=[],
        )
        imagined = acted.detach()
        imagined.set(self.tensor_keys.lambda_target, lambda_target.detach())
        imagined.set(self.tensor_keys.discount_weight, weight.detach())
        return losses, imagined


class ImaginationValueLoss(LossModule):
    """DreamerV2 critic loss on imagined states (Vid2Act Eq. 8, critic part).

    Regresses the online critic ``v(s_h)`` toward the detached lambda-returns
    of :class:`ImaginationActorLoss` (computed with the slow target critic),
    weighted by the detached discount weights ``w_h = γ^h``::

        L = mean_{n, h<H} w_h d(v(s_h), sg(R^λ_h))

    with ``d`` the squared error by default (DreamerV2's ``critic.dist: mse``).

    The loss owns the critic: ``value_network_params`` (online, the only
    entries of ``loss.parameters()``) and ``target_value_network_params`` (the
    slow critic, a copy made by ``convert_to_functional(...,
    create_target_params=True)``). :attr:`target_value_network` evaluates the
    critic with the slow parameters; pass it to :class:`ImaginationActorLoss`.
    The slow critic follows DreamerV2 (``slow_target_update: 100``,
    ``slow_target_fraction: 1``): a :class:`~torchrl.objectives.HardUpdate`
    copy every 100 gradient steps, built by :meth:`make_target_updater`
    (a :class:`~torchrl.objectives.SoftUpdate` on this loss also works, for
    DreamerV3-style EMA targets).

    Args:
        value_network (TensorDictModuleBase): the critic, e.g. from
            :func:`~vid2act.components.behavior.make_value_model`.

    Keyword Args:
        loss_function (str): ``"l2"`` (default), ``"l1"`` or ``"smooth_l1"``
            (:func:`torchrl.objectives.utils.distance_loss`).

    Raises:
        ValueError: on an unknown ``loss_function``; in ``forward``, if the
            predicted values, targets and weights do not share one shape.
        KeyError: in ``forward``, if ``lambda_target`` or ``discount_weight``
            is missing (they are produced by :class:`ImaginationActorLoss`).
        FloatingPointError: in ``forward``, if the loss is not finite.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from vid2act.components.behavior import make_value_model
        >>> loss = ImaginationValueLoss(make_value_model(5, hidden=16, layers=2))
        >>> updater = loss.make_target_updater(period=100)
        >>> imagined = TensorDict({"feature": torch.randn(6, 4, 5), "lambda_target": torch.randn(6, 4, 1),
        ...                        "discount_weight": torch.ones(6, 4, 1)}, [6, 4])
        >>> out = loss(imagined)
        >>> out["loss_value"].backward()
        >>> sorted(out.keys())
        ['loss_value', 'value_mean']
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable tensordict keys.

        Attributes:
            value (NestedKey): critic output. Default ``"state_value"``.
            lambda_target (NestedKey): regression target ``[N, H, 1]``. Default ``"lambda_target"``.
            discount_weight (NestedKey): weights ``[N, H, 1]``. Default ``"discount_weight"``.
        """

        value: NestedKey = "state_value"
        lambda_target: NestedKey = "lambda_target"
        discount_weight: NestedKey = "discount_weight"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys

    value_network: TensorDictModuleBase
    value_network_params: TensorDictParams
    target_value_network_params: TensorDictParams

    def __init__(self, value_network: TensorDictModuleBase, *, loss_function: str = "l2") -> None:
        super().__init__()
        if loss_function not in ("l2", "l1", "smooth_l1"):
            raise ValueError(
                f"ImaginationValueLoss: loss_function must be 'l2', 'l1' or 'smooth_l1', got {loss_function!r}."
            )
        self.loss_function = loss_function
        self.convert_to_functional(value_network, "value_network", create_target_params=True)
        self.__dict__["_target_value_network"] = _TargetValueNetwork(self)

    @property
    def in_keys(self) -> list[NestedKey]:
        """Keys read from the imagined hand-over."""
        return [*self.value_network.in_keys, self.tensor_keys.lambda_target, self.tensor_keys.discount_weight]

    @property
    def out_keys(self) -> list[str]:
        """Entries of the output."""
        return ["loss_value", "value_mean"]

    @property
    def target_value_network(self) -> TensorDictModuleBase:
        """The critic evaluated with the slow target parameters (no gradient to any parameter)."""
        return self.__dict__["_target_value_network"]

    def make_target_updater(self, *, period: int = 100) -> HardUpdate:
        """Returns a :class:`~torchrl.objectives.HardUpdate` copying online -> slow every ``period`` ``step()`` calls.

        Call ``updater.step()`` once per critic gradient step. (TorchRL's
        ``value_network_update_interval=k`` copies on every ``(k + 1)``-th
        call, hence ``k = period - 1``.)

        Raises:
            ValueError: if ``period`` is not an int ``>= 1``.
        """
        if not isinstance(period, int) or isinstance(period, bool) or period < 1:
            raise ValueError(f"ImaginationValueLoss.make_target_updater: period must be an int >= 1, got {period!r}.")
        return HardUpdate(self, value_network_update_interval=period - 1)

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Computes ``loss_value`` on the imagined hand-over of :class:`ImaginationActorLoss`.

        Args:
            tensordict (TensorDictBase): batch ``[N, H]`` with the critic's input
                keys, ``lambda_target`` and ``discount_weight`` (both ``[N, H, 1]``).

        Returns:
            TensorDict with ``loss_value`` and ``value_mean`` (detached mean online value).
        """
        for key in (self.tensor_keys.lambda_target, self.tensor_keys.discount_weight):
            if key not in tensordict.keys(include_nested=True):
                raise KeyError(
                    f"ImaginationValueLoss: {key!r} is missing from the input; pass the `imagined` tensordict "
                    "returned by ImaginationActorLoss."
                )
        target = tensordict.get(self.tensor_keys.lambda_target).detach()
        weight = tensordict.get(self.tensor_keys.discount_weight).detach()
        with self.value_network_params.to_module(self.value_network, preserve_module_state=False):
            prediction = self.value_network(tensordict.select(*self.value_network.in_keys)).get(self.tensor_keys.value)
        if not prediction.shape == target.shape == weight.shape:
            raise ValueError(
                f"ImaginationValueLoss: value {tuple(prediction.shape)}, lambda_target {tuple(target.shape)} and "
                f"discount_weight {tuple(weight.shape)} must have the same shape."
            )
        loss_value = (weight * distance_loss(prediction, target, self.loss_function)).mean()
        _check_finite(type(self).__name__, loss_value, {"predicted value": prediction, "lambda-return target": target})
        return TensorDict({"loss_value": loss_value, "value_mean": prediction.detach().mean()}, batch_size=[])
