"""Task-selective distillation loss (Vid2Act, Eq. 3-4) as a TorchRL LossModule."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import dispatch
from tensordict.utils import NestedKey
from torchrl.objectives import LossModule

from vid2act.components.transfer.distill_head import DistillHead
from vid2act.components.transfer.similarity import SimilarityWeights

if TYPE_CHECKING:
    from vid2act.components.transfer.teacher_bank import TeacherBank

_REDUCTIONS = ("mean", "sum", "none")
_FEATURE_REDUCTIONS = ("sum", "mean")


def loss_valid_mask(loss: LossModule, tensordict: TensorDictBase, shape: torch.Size) -> torch.Tensor | None:
    """Bool validity mask of ``shape`` from the mask entries TorchRL writes, or ``None``.

    Reads the entries named by ``loss.loss_mask_key`` (by default ``("collector", "mask")``
    of a padded :class:`~torchrl.data.SliceSampler` and ``"shifted_valid"``), drops their
    trailing singleton dims and combines them with ``&``, as ``LossModule._reduce_loss`` does.
    """
    mask = None
    for key in loss._loss_mask_keys():
        m = tensordict.get(key, default=None)
        if m is None:
            continue
        while m.ndim > len(shape) and m.shape[-1] == 1:
            m = m.squeeze(-1)
        m = m.bool().expand(shape)
        mask = m if mask is None else mask & m
    return mask


class DistillationLoss(LossModule):
    """Domain-selective dynamics distillation, ``L = sum_i sum_t w_t^i ||e_t - u_t^i||^2`` (Eq. 4).

    With ``u_t^i = f_distill(s_t^i)`` (:class:`DistillHead`) and
    ``w_t = softmax_i f_weight([s_t^i, e_t])`` (:class:`SimilarityWeights`, Eq. 3). Gradients
    reach the student feature ``e_t`` (through the distance and through ``w``), ``f_distill``
    and ``f_weight``; the teacher features are detached (the teachers are frozen).

    Reduction: for each sample and step the loss sums over teachers ``N`` and feature dims
    (``||.||^2``); it is then averaged over batch and time by default. Eq. 4 sums over ``t``;
    averaging keeps ``alpha`` independent of the sequence length ``T`` and of the batch size
    and matches how the other world-model terms (KL, reconstruction, reward) are reduced.
    ``reduction="sum"`` gives Eq. 4 summed over the batch; ``feature_reduction="mean"``
    averages over feature dims instead, as the authors' released code does (``MSELoss`` mean).
    Positions marked invalid by TorchRL's masks (``("collector", "mask")`` from a padded
    :class:`~torchrl.data.SliceSampler`, see ``loss_mask_key``) are left out.

    TensorDict layout: a TensorDict with batch ``[*B, T]`` cannot hold a leading teacher
    axis, so ``teacher_feature`` is stored as ``[*B, T, N, F_t]`` (teacher axis right after
    the batch dims) and moved first inside the loss.

    Args:
        distill_head: ``f_distill`` mapping ``[N, *B, T, F_t] -> [N, *B, T, F_s]``.
        similarity_weights: ``f_weight`` + softmax, ``-> [N, *B, T]``.

    Keyword Args:
        alpha: scale of the loss (``alpha`` of the student objective, Eq. 5). Default 1.0.
        reduction: over batch and time, ``"mean"`` (default), ``"sum"`` or ``"none"``
            (``loss_distill`` then has shape ``[*B, T]``).
        feature_reduction: over feature dims, ``"sum"`` (default, squared L2 norm) or ``"mean"``.

    Inputs (``tensor_keys``):
        feature: student feature ``e_t``, ``[*B, T, F_s]``.
        teacher_feature: teacher state features ``s_t^i``, ``[*B, T, N, F_t]``.

    Returns:
        TensorDict with ``loss_distill`` (already multiplied by ``alpha``) and detached
        diagnostics: ``similarity_weights`` ``[N]`` (mean over batch and time),
        ``distill_error`` ``[N]`` (mean ``||e_t - u_t^i||^2`` per teacher),
        ``selected_task_freq`` ``[N]`` (fraction of positions where teacher ``i`` has the
        largest weight) and ``similarity_entropy`` (mean entropy of ``w``, nats).

    Raises:
        KeyError: an input entry is missing (``forward``).
        TypeError: the networks have the wrong type, or an input is not a float tensor.
        ValueError: bad ``reduction``/``feature_reduction``, inputs of the wrong shape, or a
            non-finite loss (the message names the non-finite input).

    Attributes:
        distill_head (DistillHead): ``f_distill``.
        similarity_weights (SimilarityWeights): ``f_weight`` + softmax; its ``num_teachers`` is ``N``.
        alpha (float): scale of ``loss_distill``.
        reduction (str): ``"mean"``, ``"sum"`` or ``"none"`` (over batch and time).
        feature_reduction (str): ``"sum"`` or ``"mean"`` (over feature dims).
        tensor_keys: the input keys (fields ``feature``, ``teacher_feature``; see :meth:`set_keys`).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from vid2act.components.transfer import DistillHead, SimilarityWeights
        >>> loss = DistillationLoss(DistillHead(8, 6), SimilarityWeights(8, 6, num_teachers=3), alpha=0.5)
        >>> td = TensorDict(
        ...     {"feature": torch.randn(4, 5, 6), "teacher_feature": torch.randn(4, 5, 3, 8)}, [4, 5]
        ... )
        >>> out = loss(td)
        >>> out["loss_distill"].shape, out["similarity_weights"].shape
        (torch.Size([]), torch.Size([3]))

        In a TorchRL agent (e.g. SAC): ``batch`` is a ``[B, T]`` slice of a TorchRL rollout (a
        ``SliceSampler`` sample reshaped to ``[B, T]``: ``pixels`` ``o_t``, ``action`` ``a_t``,
        ``is_init``), ``encoder`` is the agent's own module writing its feature ``"embedding"``. The
        four lines marked ``# +`` are all that distillation adds to the agent:

        >>> from tensordict.nn import TensorDictModule
        >>> from vid2act.components.transfer import TeacherBank
        >>> from vid2act.components.world_model import make_world_model
        >>> teachers = TeacherBank(make_world_model("tiny", action_dim=2, label_dim=3, reward_head=False))
        >>> encoder = TensorDictModule(torch.nn.Linear(5, 6), in_keys=["observation"], out_keys=["embedding"])
        >>> batch = TensorDict({"pixels": torch.zeros(4, 8, 3, 64, 64, dtype=torch.uint8),
        ...                     "observation": torch.randn(4, 8, 5), "action": torch.rand(4, 8, 2) * 2 - 1,
        ...                     "is_init": torch.zeros(4, 8, 1, dtype=torch.bool)}, [4, 8])
        >>> teachers.set_keys(action="action", is_init="is_init")  # + read the TorchRL rollout's keys
        >>> distill = DistillationLoss.from_teachers(teachers, student_dim=6, feature_key="embedding")  # +
        >>> optim = torch.optim.Adam([*encoder.parameters(), *distill.parameters()])  # + (the agent's optimiser)
        >>> loss = distill(teachers(encoder(batch)))["loss_distill"]  # + added to the agent's losses
        >>> loss.backward(); optim.step()
        >>> loss.shape, encoder.module.weight.grad is not None
        (torch.Size([]), True)
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable tensordict keys.

        Attributes:
            feature (NestedKey): student feature ``e_t`` ``[*B, T, F_s]``. Default ``"feature"``.
            teacher_feature (NestedKey): teacher features ``[*B, T, N, F_t]``.
                Default ``"teacher_feature"``.
        """

        feature: NestedKey = "feature"
        teacher_feature: NestedKey = "teacher_feature"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    out_keys = [
        "loss_distill",
        "similarity_weights",
        "distill_error",
        "selected_task_freq",
        "similarity_entropy",
    ]

    def __init__(
        self,
        distill_head: DistillHead,
        similarity_weights: SimilarityWeights,
        *,
        alpha: float = 1.0,
        reduction: Literal["mean", "sum", "none"] = "mean",
        feature_reduction: Literal["sum", "mean"] = "sum",
    ) -> None:
        if not isinstance(distill_head, DistillHead):
            raise TypeError(
                f"DistillationLoss: distill_head must be a DistillHead, got {type(distill_head).__name__}."
            )
        if not isinstance(similarity_weights, SimilarityWeights):
            raise TypeError(
                "DistillationLoss: similarity_weights must be a SimilarityWeights, got "
                f"{type(similarity_weights).__name__}."
            )
        if reduction not in _REDUCTIONS:
            raise ValueError(f"DistillationLoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
        if feature_reduction not in _FEATURE_REDUCTIONS:
            raise ValueError(
                f"DistillationLoss: feature_reduction must be one of {_FEATURE_REDUCTIONS}, "
                f"got {feature_reduction!r}."
            )
        if distill_head.teacher_dim != similarity_weights.teacher_dim or (
            distill_head.student_dim != similarity_weights.student_dim
        ):
            raise ValueError(
                "DistillationLoss: distill_head and similarity_weights disagree on feature sizes: "
                f"({distill_head.teacher_dim}, {distill_head.student_dim}) vs "
                f"({similarity_weights.teacher_dim}, {similarity_weights.student_dim})."
            )
        super().__init__()
        self.distill_head = distill_head
        self.similarity_weights = similarity_weights
        self.alpha = float(alpha)
        self.reduction = reduction
        self.feature_reduction = feature_reduction

    @classmethod
    def from_teachers(
        cls,
        teachers: TeacherBank,
        student_dim: int,
        *,
        distill_hidden_dims: Sequence[int] = (),
        weight_hidden_dims: Sequence[int] = (),
        weight_floor: float = 0.0,
        feature_key: NestedKey | None = None,
        **kwargs,
    ) -> DistillationLoss:
        """The loss with a new :class:`DistillHead` and :class:`SimilarityWeights` sized for ``teachers``.

        Args:
            teachers: a :class:`~vid2act.components.transfer.TeacherBank` (its ``feature_dim`` ``F_t``
                and ``num_teachers`` ``N`` are read; any object with those attributes works).
            student_dim: ``F_s``, the size of the student feature the teachers are distilled into.
            distill_hidden_dims: hidden sizes of ``f_distill`` (default: linear).
            weight_hidden_dims: hidden sizes of ``f_weight`` (default: linear).
            weight_floor: :class:`SimilarityWeights`' ``weight_floor``.
            feature_key: the key of the student feature, as ``set_keys(feature=feature_key)`` (default
                ``"feature"``).
            **kwargs: the keyword arguments of the class (``alpha``, ``reduction``, ``feature_reduction``).

        Returns:
            A :class:`DistillationLoss` whose parameters (``loss.parameters()``) are the two new networks.

        Raises:
            ValueError / TypeError: bad sizes (from the networks) or keyword arguments (see the class).
        """
        f_t, n = int(teachers.feature_dim), int(teachers.num_teachers)
        loss = cls(DistillHead(f_t, student_dim, hidden_dims=distill_hidden_dims),
                   SimilarityWeights(f_t, student_dim, n, hidden_dims=weight_hidden_dims, weight_floor=weight_floor),
                   **kwargs)
        loss.set_keys(feature=feature_key)
        return loss

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass

    @property
    def in_keys(self) -> list[NestedKey]:
        return [self.tensor_keys.feature, self.tensor_keys.teacher_feature]

    def _check_inputs(self, feature: torch.Tensor, teacher: torch.Tensor) -> None:
        where = "DistillationLoss"
        for name, x in (("feature", feature), ("teacher_feature", teacher)):
            if not isinstance(x, torch.Tensor) or not x.is_floating_point():
                raise TypeError(
                    f"{where}: {name!r} must be a floating-point tensor, got "
                    f"{getattr(x, 'dtype', type(x).__name__)}."
                )
        n = self.similarity_weights.num_teachers
        if (
            teacher.ndim != feature.ndim + 1
            or teacher.shape[:-2] != feature.shape[:-1]
            or teacher.shape[-2] != n
        ):
            raise ValueError(
                f"{where}: expected feature [*B, T, F_s] and teacher_feature [*B, T, N={n}, F_t] "
                f"(teacher axis after the batch dims), got {tuple(feature.shape)} and {tuple(teacher.shape)}."
            )

    @staticmethod
    def _raise_non_finite(feature: torch.Tensor, teacher: torch.Tensor) -> None:
        for name, x in (("feature", feature), ("teacher_feature", teacher)):
            if not torch.isfinite(x).all():
                raise FloatingPointError(f"DistillationLoss: non-finite values in input {name!r}.")
        raise FloatingPointError(
            "DistillationLoss: the loss is non-finite although the inputs are finite "
            "(diverged DistillHead/SimilarityWeights parameters?)."
        )

    def _get(self, tensordict: TensorDictBase, field: str):
        key = getattr(self.tensor_keys, field)
        value = tensordict.get(key, default=None)
        if value is None:
            raise KeyError(
                f"DistillationLoss: the input has no entry {key!r} for {field!r} "
                f"(rename with set_keys({field}=...))."
            )
        return value

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Compute ``loss_distill`` (Eq. 4) and diagnostics from ``feature`` and ``teacher_feature``."""
        feature = self._get(tensordict, "feature")
        teacher_in = self._get(tensordict, "teacher_feature")
        self._check_inputs(feature, teacher_in)
        mask = loss_valid_mask(self, tensordict, feature.shape[:-1])  # [*B, T] or None
        teacher_in = teacher_in.detach()
        if mask is not None:
            # Zero padded positions first: they may hold NaN, and NaN * 0 = NaN in backward.
            feature = torch.where(mask.unsqueeze(-1), feature, torch.zeros_like(feature))
            teacher_in = torch.where(mask[..., None, None], teacher_in, torch.zeros_like(teacher_in))
        teacher = teacher_in.movedim(-2, 0)  # [N, *B, T, F_t]

        u = self.distill_head(teacher)  # [N, *B, T, F_s]
        w = self.similarity_weights(teacher, feature)  # [N, *B, T]
        sq = (feature.unsqueeze(0) - u).pow(2)
        error = sq.sum(-1) if self.feature_reduction == "sum" else sq.mean(-1)  # [N, *B, T]
        per_position = (w * error).sum(0)  # [*B, T]
        loss = self.alpha * self._reduce_loss(per_position, tensordict)
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(loss).all()):
            self._raise_non_finite(feature, teacher)

        with torch.no_grad():
            if mask is None:
                mask = torch.ones_like(per_position, dtype=torch.bool)
            count = mask.sum().clamp_min(1)

            def masked_mean(x: torch.Tensor) -> torch.Tensor:
                x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
                return x.reshape(*x.shape[: x.ndim - mask.ndim], -1).sum(-1) / count

            selected = SimilarityWeights.select_task(w)
            teacher_ids = torch.arange(w.shape[0], device=w.device).view(-1, *[1] * selected.ndim)
            onehot = selected.unsqueeze(0) == teacher_ids
            entropy = -(w * w.clamp_min(1e-12).log()).sum(0)
            diagnostics = {
                "similarity_weights": masked_mean(w),
                "distill_error": masked_mean(error),
                "selected_task_freq": masked_mean(onehot.to(w.dtype)),
                "similarity_entropy": masked_mean(entropy),
            }
        out = TensorDict({"loss_distill": loss, **{k: v.detach() for k, v in diagnostics.items()}})
        self._clear_weakrefs(tensordict, out)
        return out
