"""The DreamerV2 world model (encoder + RSSM + decoder + reward head) as a TensorDict module."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import nn

from .decoder import ConvDecoder
from .encoder import ConvEncoder
from .rssm import RSSM

__all__ = ["WorldModel"]


class WorldModel(TensorDictModuleBase):
    """Action-conditioned world model ``F`` of Vid2Act (paper Eq. 1), DreamerV2 style.

    * representation: ``e_t = enc(o_t, k)``; ``s_t ~ q(s_t | h_t, e_t)`` (:class:`RSSM` posterior);
    * transition: ``h_t = GRU(h_{t-1}, [s_{t-1}, a_{t-1}, k])``, ``s_t ~ p(s_t | h_t)`` (prior);
    * image: ``p(o_t | s_t) = N(dec(feature_t), I)``; reward: ``p(r_t | s_t) = N(rew(feature_t), 1)``.

    ``k`` is the optional one-hot task label (``label_dim > 0``: the ``mixture`` teacher). A
    reward-free model (source pretraining, Eq. 2) has ``reward_head=None``.

    :meth:`forward` reads ``"pixels"`` ``[B, T, 3, 64, 64]`` (uint8, or float already centred),
    ``"prev_action"`` ``[B, T, A]``, ``"is_first"`` ``[B, T, 1]`` and, iff ``label_dim > 0``,
    ``"task_label"`` ``[B, T, L]``, and writes in place: ``"embed"`` ``[B, T, E]``, ``"belief"``,
    ``"state"``, ``"feature"``, ``"prior_<p>"``, ``"posterior_<p>"`` (``<p>``: ``logits``
    ``[B, T, C, K]`` for categorical latents, ``mean``/``std`` ``[B, T, S]`` for Gaussian),
    ``"reco_pixels"`` ``[B, T, 3, 64, 64]`` (decoded mean, centred pixel space) and, with a reward
    head, ``"reward_pred"`` ``[B, T, 1]``.

    Args:
        encoder: :class:`ConvEncoder` (or any module ``(pixels, label) -> [*, E]`` with
            ``embed_dim`` and ``label_dim`` attributes).
        rssm: :class:`RSSM`.
        decoder: :class:`ConvDecoder` (or any module ``feature -> [*, 3, 64, 64]``).
        reward_head: module ``feature [*, F] -> [*, 1]`` or ``None``.

    Raises:
        ValueError: if the parts' sizes do not fit together.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from vid2act.components.world_model import make_world_model
        >>> wm = make_world_model("tiny", action_dim=2)
        >>> td = TensorDict({
        ...     "pixels": torch.zeros(2, 4, 3, 64, 64, dtype=torch.uint8),
        ...     "prev_action": torch.zeros(2, 4, 2),
        ...     "is_first": torch.tensor([True, False, False, False]).expand(2, 4).unsqueeze(-1),
        ... }, [2, 4])
        >>> wm(td)["reco_pixels"].shape, td["reward_pred"].shape
        (torch.Size([2, 4, 3, 64, 64]), torch.Size([2, 4, 1]))
    """

    def __init__(
        self, encoder: nn.Module, rssm: RSSM, decoder: nn.Module, reward_head: nn.Module | None = None
    ) -> None:
        super().__init__()
        embed_dim = getattr(encoder, "embed_dim", rssm.embed_dim)
        if embed_dim != rssm.embed_dim:
            raise ValueError(f"WorldModel: encoder.embed_dim={embed_dim} != rssm.embed_dim={rssm.embed_dim}.")
        enc_label = getattr(encoder, "label_dim", rssm.label_dim)
        if enc_label != rssm.label_dim:
            raise ValueError(f"WorldModel: encoder.label_dim={enc_label} != rssm.label_dim={rssm.label_dim}.")
        dec_feature = getattr(decoder, "feature_dim", rssm.feature_dim)
        if dec_feature != rssm.feature_dim:
            raise ValueError(
                f"WorldModel: decoder.feature_dim={dec_feature} != rssm.feature_dim={rssm.feature_dim}."
            )
        self.encoder = encoder
        self.rssm = rssm
        self.decoder = decoder
        self.reward_head = reward_head
        #: The ``WorldModelConfig`` this model was built from (set by ``WorldModelConfig.build``), else None.
        self.config = None
        self.in_keys = ["pixels", "prev_action", "is_first"] + (["task_label"] if rssm.label_dim else [])
        self.out_keys = (
            ["embed", "belief", "state", "feature"]
            + list(rssm.param_keys("prior") + rssm.param_keys("posterior"))
            + ["reco_pixels"]
            + (["reward_pred"] if reward_head is not None else [])
        )

    # ------------------------------------------------------------------ sizes
    @property
    def action_dim(self) -> int:
        """``A``."""
        return self.rssm.action_dim

    @property
    def label_dim(self) -> int:
        """``L`` (0: no task label)."""
        return self.rssm.label_dim

    @property
    def feature_dim(self) -> int:
        """Size of ``feature = cat[belief, state]``."""
        return self.rssm.feature_dim

    @property
    def has_reward_head(self) -> bool:
        """Whether the model predicts rewards."""
        return self.reward_head is not None

    # ------------------------------------------------------------------ tensor verbs
    def encode(self, pixels: torch.Tensor, task_label: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings ``[*, E]`` of frames ``[*, 3, 64, 64]`` (label ``[*, L]`` iff ``label_dim > 0``)."""
        return self.encoder(pixels, task_label)

    def decode(self, feature: torch.Tensor) -> torch.Tensor:
        """Image means ``[*, 3, 64, 64]`` (centred pixel space) of features ``[*, F]``."""
        return self.decoder(feature)

    def compute(
        self, pixels: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
        task_label: torch.Tensor | None = None, *, start: TensorDictBase | Mapping | None = None,
        decode: bool = True, sample: bool = True,
    ) -> TensorDict:
        """Encode, filter and decode a batch of sequences; returns the outputs as a new TensorDict.

        Args:
            pixels: ``[*B, T, 3, 64, 64]`` uint8 (or float, centred).
            prev_action: ``[*B, T, A]``.
            is_first: ``[*B, T, 1]`` bool.
            task_label: ``[*B, T, L]`` iff ``label_dim > 0``.
            start: carried state before row 0 (default: initial state).
            decode: also decode ``"reco_pixels"`` (and predict ``"reward_pred"``).
            sample: sample the posterior (True) or take its mode.

        Returns:
            TensorDict ``[*B, T]`` with the keys listed in the class docstring.

        Raises:
            ValueError / TypeError: on mis-shaped or mistyped inputs (message names the input).
        """
        if task_label is not None and not self.label_dim:
            raise ValueError("WorldModel has label_dim=0 but received a task label.")
        embed = self.encode(pixels, task_label)
        out = self.rssm.observe(embed, prev_action, is_first, task_label, start, sample=sample)
        out.set("embed", embed)
        if decode:
            out.set("reco_pixels", self.decoder(out["feature"]))
            if self.reward_head is not None:
                out.set("reward_pred", self.reward_head(out["feature"]))
        return out

    # ------------------------------------------------------------------ TensorDict verbs
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Run :meth:`compute` on the tensordict's entries and write the outputs into it (in place).

        Raises:
            KeyError: if an input key is missing.
        """
        inputs = [_get(tensordict, key, "WorldModel.forward") for key in self.in_keys]
        out = self.compute(*inputs)
        tensordict.update(out)
        return tensordict

    def initial(self, batch_shape: Sequence[int] | torch.Size) -> TensorDict:
        """Initial carried state (``"belief"``, ``"state"`` zeros) of batch ``batch_shape``."""
        return self.rssm.initial(batch_shape)

    def obs_step(self, tensordict: TensorDictBase, *, sample: bool = True) -> TensorDictBase:
        """One filtering step for acting (Algorithm 1, line 22), in place.

        Reads ``"pixels"`` ``[*B, 3, 64, 64]``, ``"prev_action"`` ``[*B, A]``, ``"is_first"``
        ``[*B, 1]``, ``"task_label"`` ``[*B, L]`` iff ``label_dim > 0``, and the carried
        ``"belief"``/``"state"`` (absent: initial state). Writes the new ``"belief"``, ``"state"``,
        ``"feature"``.

        Raises:
            KeyError: if an input key is missing.
        """
        where = "WorldModel.obs_step"
        pixels = _get(tensordict, "pixels", where)
        label = _get(tensordict, "task_label", where) if self.label_dim else None
        embed = self.encode(pixels, label)
        batch = embed.shape[:-1]
        carried = (
            tensordict
            if "belief" in tensordict.keys() and "state" in tensordict.keys()
            else self.rssm.initial(batch, device=embed.device, dtype=embed.dtype)
        )
        out = self.rssm.obs_step(
            carried["belief"], carried["state"], _get(tensordict, "prev_action", where), embed,
            _get(tensordict, "is_first", where), label, sample=sample,
        )
        tensordict.update(out.select("belief", "state", "feature"))
        return tensordict

    def imagine(
        self, start: TensorDictBase, actor: Callable[[TensorDictBase], TensorDictBase | None], horizon: int,
        *, sample: bool = True,
    ) -> TensorDictBase:
        """Latent imagination under ``actor`` with predicted rewards (the imagination protocol).

        Args:
            start: TensorDict ``[*B]`` with ``"belief"``, ``"state"``; every other key (e.g.
                ``"task_index"``, ``"task_label"``) is copied unchanged into every step before
                ``actor`` is called. Gradients are not cut here: detach ``start`` yourself.
            actor: TensorDict module writing ``"action"`` ``[*B, A]`` (e.g. a ``ProbabilisticActor``;
                any other keys it writes are kept).
            horizon: ``H``.
            sample: sample the prior (True) or take its mode.

        Returns:
            TensorDict ``[*B, H + 1]``: row ``h`` has ``"belief"``, ``"state"``, ``"feature"``,
            the fixed keys, the actor's outputs (``"action"`` included on the last row) and, with a
            reward head, ``"reward"`` ``[*B, H + 1, 1]`` = reward head on row ``h``'s feature (the
            reward for arriving at state ``h``; row 0 is the head on the start feature). The
            prior's samples are reparameterised, so the result is differentiable w.r.t. the
            actions and the model parameters (freeze the model with e.g. TorchRL's
            ``hold_out_net`` for the actor loss).

        Raises:
            TypeError / ValueError: see :meth:`RSSM.imagine`.
        """
        traj = self.rssm.imagine(start, actor, horizon, sample=sample)
        if self.reward_head is not None:
            traj.set("reward", self.reward_head(traj["feature"]))
        return traj


def _get(tensordict: TensorDictBase, key: str, where: str) -> torch.Tensor:
    if key not in tensordict.keys():
        raise KeyError(f"{where}: key {key!r} missing from the tensordict (keys: {sorted(tensordict.keys())}).")
    return tensordict.get(key)
