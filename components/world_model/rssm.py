"""Recurrent state-space model (RSSM) of DreamerV2, with TensorDict verbs.

Rows follow the Dreamer convention of :mod:`vid2act.components.data.rows`: row ``t`` holds ``o_t`` and
``a_{t-1}`` (``prev_action``), so the posterior at row ``t`` is
``q(s_t | h_t, o_t)`` with ``h_t = GRU(h_{t-1}, [s_{t-1}, a_{t-1}])``, using row ``t``'s own
``prev_action``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from torch import distributions as D
from torch import nn
from torchrl.modules import RSSMPosteriorV3, RSSMPriorV3

from .gaussian import GaussianPosterior, GaussianPrior
from .gru import GRUS, LayerNormGRUCell
from .latents import CategoricalLatent, GaussianLatent, LatentSpace

__all__ = ["RSSM", "LATENTS"]

#: Valid values of ``RSSM(latent=...)``.
LATENTS = ("categorical", "gaussian")

_STATE_KEYS = ("belief", "state", "feature")


class RSSM(nn.Module):
    """DreamerV2 RSSM: deterministic GRU ``belief`` ``h_t`` and stochastic ``state`` ``s_t``.

    * prior (dynamics): ``h_t = GRU(h_{t-1}, [s_{t-1}, a_{t-1}, k])``, ``s_t ~ p(s_t | h_t)``;
    * posterior (representation): ``s_t ~ q(s_t | h_t, e_t)`` with ``e_t`` the image embedding;
    * feature: ``cat[h_t, s_t]``, what decoder, reward head, actor and critic read.

    ``k`` is an optional one-hot task label (``label_dim > 0``) concatenated to the prior's
    ``[state, action]`` input (the ``mixture`` teacher of Vid2Act's released code).

    Latents: ``"categorical"`` (DreamerV2 default: ``C x K`` one-hot categoricals with
    straight-through samples, optional ``unimix``) uses TorchRL's
    :class:`~torchrl.modules.RSSMPriorV3` (``"gru"`` core) and :class:`~torchrl.modules.RSSMPosteriorV3`
    networks as they are; the task label enters through their action input. ``"gaussian"``
    (dreamer-torch ``discrete=False``: ``mean``, ``std = softplus + min_std``) uses
    :class:`~vid2act.components.world_model.GaussianPrior` / ``GaussianPosterior``.

    Why the sequence loop is ours and not :class:`~torchrl.modules.RSSMRolloutV3`: TorchRL's rollout
    uses the ``("next", ...)`` layout (the transition of row ``t`` consumes row ``t``'s action and
    writes the next state), zeroes the whole prior action input on a reset (which would also erase
    the task label), supports categorical latents only and has no imagination verb. Here a reset
    (``is_first``) sets the carried belief, state and previous action to the initial state (zeros,
    as DreamerV2 and TorchRL) before row ``t``'s step, keeping the label.

    Recurrent core (``gru``): ``"layer_norm"`` (default) replaces the prior network's ``.rnn`` by
    :class:`~vid2act.components.world_model.LayerNormGRUCell`, DreamerV2's GRU with LayerNorm
    gates and update bias -1; ``"torch"`` keeps the plain ``nn.GRUCell`` of TorchRL's networks
    (the model of checkpoints written before the option existed).

    Difference from DreamerV2's own RSSM, inherited from TorchRL's V3 networks in the categorical
    case: SiLU activations inside the RSSM (ELU elsewhere).

    Args:
        action_dim: ``A``.
        embed_dim: size ``E`` of the encoder's embedding.
        belief_dim: size of the GRU state ``h_t`` (DreamerV2: 200 on DMC, 600 on Atari).
        hidden_dim: width of the prior/posterior MLP layers (DreamerV2: 200 on DMC, 600 on Atari).
        latent: ``"categorical"`` or ``"gaussian"``.
        num_categoricals: ``C`` (categorical).
        num_classes: ``K`` (categorical).
        stoch_dim: size ``S`` of the Gaussian state.
        min_std: Gaussian std lower bound.
        unimix: uniform mixture of the categoricals (0 in DreamerV2).
        label_dim: size ``L`` of the task label (0: none).
        gru: ``"layer_norm"`` (DreamerV2's LayerNorm GRU) or ``"torch"`` (``nn.GRUCell``).

    Raises:
        ValueError: on an unknown ``latent`` or ``gru``, or non-positive sizes.

    Examples:
        >>> import torch
        >>> rssm = RSSM(action_dim=2, embed_dim=6, belief_dim=8, hidden_dim=8,
        ...             num_categoricals=2, num_classes=4)
        >>> is_first = torch.zeros(3, 5, 1, dtype=torch.bool)
        >>> out = rssm.observe(torch.randn(3, 5, 6), torch.randn(3, 5, 2), is_first)
        >>> out.batch_size, out["feature"].shape, out["posterior_logits"].shape
        (torch.Size([3, 5]), torch.Size([3, 5, 16]), torch.Size([3, 5, 2, 4]))
    """

    def __init__(
        self,
        *,
        action_dim: int,
        embed_dim: int,
        belief_dim: int = 200,
        hidden_dim: int = 200,
        latent: str = "categorical",
        num_categoricals: int = 32,
        num_classes: int = 32,
        stoch_dim: int = 32,
        min_std: float = 0.1,
        unimix: float = 0.0,
        label_dim: int = 0,
        gru: str = "layer_norm",
    ) -> None:
        super().__init__()
        if gru not in GRUS:
            raise ValueError(f"RSSM: gru must be one of {GRUS}, got {gru!r}.")
        for name, value in (("action_dim", action_dim), ("embed_dim", embed_dim),
                            ("belief_dim", belief_dim), ("hidden_dim", hidden_dim)):
            if value < 1:
                raise ValueError(f"RSSM: {name} must be >= 1, got {value}.")
        if label_dim < 0:
            raise ValueError(f"RSSM: label_dim must be >= 0, got {label_dim}.")
        self.action_dim = action_dim
        self.embed_dim = embed_dim
        self.belief_dim = belief_dim
        self.label_dim = label_dim
        prior_action_dim = action_dim + label_dim
        self.latent: LatentSpace
        if latent == "categorical":
            self.latent = CategoricalLatent(num_categoricals, num_classes, unimix)
            self.prior_net = RSSMPriorV3(
                action_shape=(prior_action_dim,), action_dim=prior_action_dim, hidden_dim=hidden_dim,
                rnn_hidden_dim=belief_dim, num_categoricals=num_categoricals, num_classes=num_classes,
                unimix=unimix,
            )
            self.posterior_net = RSSMPosteriorV3(
                hidden_dim=hidden_dim, num_categoricals=num_categoricals, num_classes=num_classes,
                rnn_hidden_dim=belief_dim, obs_embed_dim=embed_dim, unimix=unimix,
            )
        elif latent == "gaussian":
            self.latent = GaussianLatent(stoch_dim)
            self.prior_net = GaussianPrior(
                action_dim=prior_action_dim, state_dim=stoch_dim, belief_dim=belief_dim,
                hidden_dim=hidden_dim, min_std=min_std,
            )
            self.posterior_net = GaussianPosterior(
                embed_dim=embed_dim, state_dim=stoch_dim, belief_dim=belief_dim,
                hidden_dim=hidden_dim, min_std=min_std,
            )
        else:
            raise ValueError(f"RSSM: latent must be one of {LATENTS}, got {latent!r}.")
        self.gru = gru
        if gru == "layer_norm":  # both prior networks feed the cell their hidden_dim projection
            self.prior_net.rnn = LayerNormGRUCell(hidden_dim, belief_dim)
        self.state_dim = self.latent.state_dim
        self.feature_dim = belief_dim + self.state_dim

    # ------------------------------------------------------------------ helpers
    def param_keys(self, which: str) -> tuple[str, ...]:
        """TensorDict keys of the ``"prior"`` or ``"posterior"`` parameters, e.g. ``("prior_logits",)``."""
        if which not in ("prior", "posterior"):
            raise ValueError(f"which must be 'prior' or 'posterior', got {which!r}.")
        return tuple(f"{which}_{name}" for name in self.latent.param_names)

    def distribution(
        self, params: Mapping[str, torch.Tensor] | TensorDictBase, which: str, *, detach: bool = False
    ) -> D.Distribution:
        """The prior or posterior as a ``torch.distributions`` object.

        Args:
            params: a TensorDict / mapping holding ``f"{which}_{name}"`` for each parameter name
                (e.g. the output of :meth:`observe`).
            which: ``"prior"`` or ``"posterior"``.
            detach: build it from detached parameters (stop-gradient ``sg(.)``).

        Returns:
            A distribution with batch shape ``[*B]`` whose ``log_prob`` / ``entropy`` / KL are summed
            over all latent dimensions (nats).

        Raises:
            ValueError: on a bad ``which``. KeyError: if a parameter is missing.
        """
        out = {}
        for key, name in zip(self.param_keys(which), self.latent.param_names):
            if key not in params.keys():
                raise KeyError(f"RSSM.distribution: {key!r} missing (have {sorted(params.keys())}).")
            value = params[key]
            out[name] = value.detach() if detach else value
        return self.latent.distribution(out)

    def initial(
        self, batch_shape: Sequence[int] | torch.Size, *, device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> TensorDict:
        """Initial (reset) carried state: zeros ``"belief" [*B, belief_dim]``, ``"state" [*B, state_dim]``."""
        ref = next(self.parameters())
        device = ref.device if device is None else device
        dtype = ref.dtype if dtype is None else dtype
        batch_shape = torch.Size(batch_shape)
        return TensorDict(
            {
                "belief": torch.zeros(*batch_shape, self.belief_dim, device=device, dtype=dtype),
                "state": torch.zeros(*batch_shape, self.state_dim, device=device, dtype=dtype),
            },
            batch_size=batch_shape,
            device=device,
        )

    def _prior(self, state, belief, action, label, sample):
        if label is not None:
            action = torch.cat([action, label.to(action.dtype)], dim=-1)
        # the GRU cell (inside the prior networks) only takes [N, D]: flatten the batch dims.
        batch = belief.shape[:-1]
        flat = [x.reshape(-1, x.shape[-1]) for x in (state, belief, action)]
        raw, prior_state, belief = self.prior_net(*flat)
        unflat = lambda x: x.reshape(*batch, *x.shape[1:])  # noqa: E731
        raw = unflat(raw) if isinstance(raw, torch.Tensor) else tuple(unflat(x) for x in raw)
        prior_state, belief = unflat(prior_state), unflat(belief)
        params = self.latent.as_params(raw)
        if not sample:
            prior_state = self.latent.sample(params, sample=False)
        return belief, params, prior_state

    def _posterior(self, belief, embed, sample):
        raw, state = self.posterior_net(belief, embed)
        params = self.latent.as_params(raw)
        if not sample:
            state = self.latent.sample(params, sample=False)
        return params, state

    def _obs_step(self, belief, state, prev_action, embed, is_first, label, sample):
        if is_first is not None:
            belief = torch.where(is_first, 0.0, belief)
            state = torch.where(is_first, 0.0, state)
            prev_action = torch.where(is_first, 0.0, prev_action)
        belief, prior, _ = self._prior(state, belief, prev_action, label, sample)
        post, state = self._posterior(belief, embed, sample)
        return belief, state, prior, post

    def _check(self, name: str, value: torch.Tensor | None, shape: tuple, where: str) -> None:
        if value is None or tuple(value.shape) != tuple(shape):
            got = None if value is None else tuple(value.shape)
            raise ValueError(f"RSSM.{where}: {name} must have shape {tuple(shape)}, got {got}.")

    def _label(self, label: torch.Tensor | None, shape: tuple, where: str) -> torch.Tensor | None:
        if self.label_dim:
            if label is None:
                raise ValueError(f"RSSM.{where}: this RSSM has label_dim={self.label_dim}; pass a task label.")
            self._check("label", label, (*shape, self.label_dim), where)
            return label
        if label is not None:
            raise ValueError(f"RSSM.{where}: this RSSM has label_dim=0 but received a task label.")
        return None

    def _start(self, start, batch, where, ref):
        if start is None:
            init = self.initial(batch, device=ref.device, dtype=ref.dtype)
            return init["belief"], init["state"]
        belief, state = start["belief"], start["state"]
        self._check("start['belief']", belief, (*batch, self.belief_dim), where)
        self._check("start['state']", state, (*batch, self.state_dim), where)
        return belief, state

    def _out(self, belief, state, params: dict[str, dict[str, torch.Tensor]], batch) -> TensorDict:
        out = {"belief": belief, "state": state, "feature": torch.cat([belief, state], dim=-1)}
        for which, values in params.items():
            for name, value in values.items():
                out[f"{which}_{name}"] = value
        return TensorDict(out, batch_size=batch, device=belief.device)

    # ------------------------------------------------------------------ verbs
    def obs_step(
        self, belief: torch.Tensor, state: torch.Tensor, prev_action: torch.Tensor, embed: torch.Tensor,
        is_first: torch.Tensor | None = None, label: torch.Tensor | None = None, *, sample: bool = True,
    ) -> TensorDict:
        """One filtering step (acting): reset where ``is_first``, prior step with ``prev_action``, posterior.

        Args:
            belief: carried belief ``[*B, belief_dim]``.
            state: carried state ``[*B, state_dim]``.
            prev_action: ``a_{t-1}`` ``[*B, A]``.
            embed: embedding of ``o_t`` ``[*B, E]``.
            is_first: ``[*B, 1]`` (or ``[*B]``) bool; where True the carried belief, state and
                action are replaced by the initial state first. ``None``: no reset.
            label: one-hot task label ``[*B, L]`` (iff ``label_dim > 0``).
            sample: draw the posterior (True) or take its mode.

        Returns:
            TensorDict ``[*B]`` with ``"belief"``, ``"state"``, ``"feature"``, ``"prior_<p>"``,
            ``"posterior_<p>"`` (``<p>``: ``logits``, or ``mean``/``std``).

        Raises:
            ValueError: on mis-shaped inputs or a missing / unexpected label.
        """
        batch = tuple(embed.shape[:-1])
        self._check("embed", embed, (*batch, self.embed_dim), "obs_step")
        self._check("prev_action", prev_action, (*batch, self.action_dim), "obs_step")
        self._check("belief", belief, (*batch, self.belief_dim), "obs_step")
        self._check("state", state, (*batch, self.state_dim), "obs_step")
        label = self._label(label, batch, "obs_step")
        if is_first is not None:
            is_first = _as_flag(is_first, batch, "obs_step")
        belief, state, prior, post = self._obs_step(belief, state, prev_action, embed, is_first, label, sample)
        return self._out(belief, state, {"prior": prior, "posterior": post}, batch)

    def img_step(
        self, belief: torch.Tensor, state: torch.Tensor, action: torch.Tensor,
        label: torch.Tensor | None = None, *, sample: bool = True,
    ) -> TensorDict:
        """One imagination step with the prior: ``h' = GRU(h, [s, a, k])``, ``s' ~ p(s' | h')``.

        Args:
            belief: ``[*B, belief_dim]``; state: ``[*B, state_dim]``; action: ``[*B, A]``;
            label: ``[*B, L]`` iff ``label_dim > 0``; sample: sample (True) or mode.

        Returns:
            TensorDict ``[*B]`` with ``"belief"``, ``"state"``, ``"feature"``, ``"prior_<p>"``.
            Samples are reparameterised, so gradients flow into ``action``.

        Raises:
            ValueError: on mis-shaped inputs or a missing / unexpected label.
        """
        batch = tuple(belief.shape[:-1])
        self._check("belief", belief, (*batch, self.belief_dim), "img_step")
        self._check("state", state, (*batch, self.state_dim), "img_step")
        self._check("action", action, (*batch, self.action_dim), "img_step")
        label = self._label(label, batch, "img_step")
        belief, prior, state = self._prior(state, belief, action, label, sample)
        return self._out(belief, state, {"prior": prior}, batch)

    def observe(
        self, embed: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
        label: torch.Tensor | None = None, start: TensorDictBase | Mapping | None = None, *, sample: bool = True,
    ) -> TensorDict:
        """Filter a sequence: posterior and prior at every row (paper Eq. 1 / DreamerV2 ``observe``).

        Args:
            embed: embeddings of ``o_t``, ``[*B, T, E]``.
            prev_action: ``a_{t-1}`` of each row, ``[*B, T, A]``.
            is_first: ``[*B, T, 1]`` (or ``[*B, T]``) bool; at such rows the carried state is reset
                to :meth:`initial` (and the previous action zeroed) before the step.
            label: one-hot task label ``[*B, T, L]`` (iff ``label_dim > 0``).
            start: carried state before row 0 (``"belief"``, ``"state"`` of batch ``[*B]``);
                default :meth:`initial`.
            sample: sample the posterior (True, training) or take its mode.

        Returns:
            TensorDict ``[*B, T]`` with ``"belief"``, ``"state"`` (posterior sample, flattened),
            ``"feature"`` (= cat[belief, state]), ``"prior_<p>"`` and ``"posterior_<p>"``.

        Raises:
            ValueError: on mis-shaped inputs or a missing / unexpected label.
        """
        if embed.ndim < 2:
            raise ValueError(f"RSSM.observe: embed must be [*B, T, E], got {tuple(embed.shape)}.")
        batch, time = tuple(embed.shape[:-2]), embed.shape[-2]
        self._check("embed", embed, (*batch, time, self.embed_dim), "observe")
        self._check("prev_action", prev_action, (*batch, time, self.action_dim), "observe")
        is_first = _as_flag(is_first, (*batch, time), "observe")
        label = self._label(label, (*batch, time), "observe")
        belief, state = self._start(start, batch, "observe", embed)
        tdim = len(batch)
        beliefs, states, priors, posts = [], [], [], []
        for t in range(time):
            belief, state, prior, post = self._obs_step(
                belief, state, prev_action.select(tdim, t), embed.select(tdim, t), is_first.select(tdim, t),
                None if label is None else label.select(tdim, t), sample,
            )
            beliefs.append(belief)
            states.append(state)
            priors.append(prior)
            posts.append(post)
        params = {
            which: {name: torch.stack([p[name] for p in seq], dim=tdim) for name in self.latent.param_names}
            for which, seq in (("prior", priors), ("posterior", posts))
        }
        return self._out(torch.stack(beliefs, tdim), torch.stack(states, tdim), params, (*batch, time))

    def imagine(
        self, start: TensorDictBase, policy: Callable[[TensorDictBase], TensorDictBase | None], horizon: int,
        *, sample: bool = True, action_key: str = "action", label_key: str = "task_label",
    ) -> TensorDictBase:
        """Roll the prior forward ``horizon`` steps under ``policy`` (latent imagination).

        Step ``h = 0..H``: a TensorDict with ``"belief"``, ``"state"``, ``"feature"`` and every
        other key of ``start`` (held fixed, e.g. ``"task_index"``) is passed to ``policy``, which
        must write ``action_key`` ``[*B, A]``; for ``h < H`` the prior then steps with that action
        (reparameterised, so gradients flow into the action). Gradients are not cut at ``start``:
        detach it yourself when the model must not learn from the behaviour losses.

        Args:
            start: TensorDict ``[*B]`` with ``"belief"`` and ``"state"`` (plus ``label_key`` if
                ``label_dim > 0``, used as the prior's label at every step).
            policy: e.g. a TorchRL ``ProbabilisticActor``; called once per step.
            horizon: ``H >= 0`` prior steps.
            sample: sample the prior (True) or take its mode.
            action_key: key the policy writes the action to.
            label_key: key of the task label in ``start``.

        Returns:
            TensorDict ``[*B, H + 1]`` with the keys of every step (including the last row's action).

        Raises:
            TypeError: if ``start`` is not a TensorDict or ``horizon`` not an int.
            KeyError: if ``start`` lacks ``"belief"`` or ``"state"``.
            ValueError: on ``horizon < 0``, mis-shaped start state, a missing label, or a policy
                that does not write ``action_key``.
        """
        if not isinstance(start, TensorDictBase):
            raise TypeError(f"RSSM.imagine: start must be a TensorDict, got {type(start).__name__}.")
        if isinstance(horizon, bool) or not isinstance(horizon, int):
            raise TypeError(f"RSSM.imagine: horizon must be an int, got {horizon!r}.")
        if horizon < 0:
            raise ValueError(f"RSSM.imagine: horizon must be >= 0, got {horizon}.")
        missing = [key for key in ("belief", "state") if key not in start.keys()]
        if missing:
            raise KeyError(f"RSSM.imagine: start is missing {missing} (keys: {sorted(start.keys())}).")
        batch = tuple(start.batch_size)
        belief, state = self._start(start, batch, "imagine", start["belief"])
        label = self._label(start.get(label_key, None) if self.label_dim else None, batch, "imagine")
        fixed = start.exclude(*_STATE_KEYS)
        steps = []
        for h in range(horizon + 1):
            td = fixed.copy()
            td.set("belief", belief)
            td.set("state", state)
            td.set("feature", torch.cat([belief, state], dim=-1))
            out = policy(td)
            td = td if out is None else out
            if action_key not in td.keys():
                raise ValueError(f"RSSM.imagine: the policy did not write {action_key!r} (keys: {sorted(td.keys())}).")
            steps.append(td)
            if h < horizon:
                belief, _, state = self._prior(state, belief, td.get(action_key), label, sample)
        return torch.stack(steps, dim=len(batch))


def _as_flag(is_first: torch.Tensor, shape: tuple, where: str) -> torch.Tensor:
    """``is_first`` as a bool tensor ``[*shape, 1]``."""
    if tuple(is_first.shape) == tuple(shape):
        is_first = is_first.unsqueeze(-1)
    if tuple(is_first.shape) != (*shape, 1):
        raise ValueError(f"RSSM.{where}: is_first must have shape {(*shape, 1)} or {tuple(shape)}, got {tuple(is_first.shape)}.")
    return is_first.bool()
