"""Similarity weights ``w_t = softmax_i f_weight([s_t^i, e_t])`` (Vid2Act, Eq. 3) and task selection."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn
from torchrl.modules import MLP

from ._checks import check_dims, check_last_dim, check_tensor

_MODES = ("learned", "uniform")


class SimilarityWeights(nn.Module):
    """Per-sample, per-step similarity weights over the ``N`` teachers (Vid2Act, Eq. 3).

    ``logits_t^i = f_weight([s_t^i, e_t])`` where ``f_weight`` is one network shared by all
    teachers applied to the concatenation of teacher ``i``'s state feature and the student
    feature (a single linear layer by default, as in the paper and the authors' released
    code; ``hidden_dims`` makes it an MLP), then

    ``w_t = f + (1 - N f) * softmax_i(logits_t)``

    with ``f = weight_floor``: the weights still sum to 1 over teachers and each is at least
    ``f`` (``f = 0`` is Eq. 3 exactly). The authors' released code instead clamps
    ``max(0.1, w)``, which breaks the sum-to-one; the convex floor keeps ``w`` a distribution.
    ``mode="uniform"`` is the ``uniform_weights`` ablation: ``w = 1/N`` everywhere and the
    module has no parameters.

    Gradients of a loss on ``w`` reach ``f_weight`` and the student feature ``e_t``; callers
    pass teacher features that are already detached (frozen teachers). Note that with a
    *linear* ``f_weight`` (the paper's "fully-connected layer" and the default here) the
    student term adds the same ``a_e . e_t`` to every teacher's logit and cancels in the
    softmax, so ``w`` then depends on the teacher states only; ``hidden_dims`` makes the
    weighting depend on the pair ``(s_t^i, e_t)``.

    Args:
        teacher_dim: ``F_t``.
        student_dim: ``F_s``.
        num_teachers: ``N``.

    Keyword Args:
        mode: ``"learned"`` (default) or ``"uniform"``.
        hidden_dims: hidden sizes of ``f_weight``; ``()`` (default) is a linear layer.
        activation: activation between hidden layers (default ``nn.ELU``).
        weight_floor: ``f`` in ``[0, 1/N)``; default ``0.0`` (0.1 in the released code).

    Attributes:
        teacher_dim (int): ``F_t``.
        student_dim (int): ``F_s``.
        num_teachers (int): ``N``, the size of the weights' leading axis.
        hidden_dims (tuple[int, ...]): hidden sizes of ``f_weight``.
        mode (str): ``"learned"`` or ``"uniform"``.
        weight_floor (float): ``f``, the smallest weight.
        f_weight (nn.Module | None): the logit network ``[F_t + F_s] -> 1`` (``None`` with ``mode="uniform"``).

    Raises:
        ValueError: unknown ``mode``, a non-positive dimension, ``weight_floor < 0`` or
            ``N * weight_floor >= 1``.

    Examples:
        >>> import torch
        >>> sim = SimilarityWeights(8, 6, num_teachers=3, weight_floor=0.1)
        >>> w = sim(torch.randn(3, 4, 5, 8), torch.randn(4, 5, 6))  # [N,B,T,F_t], [B,T,F_s]
        >>> w.shape, bool(torch.allclose(w.sum(0), torch.ones(4, 5))), bool((w >= 0.1).all())
        (torch.Size([3, 4, 5]), True, True)
        >>> sim.select_task(w).shape  # argmax over teachers
        torch.Size([4, 5])
    """

    def __init__(
        self,
        teacher_dim: int,
        student_dim: int,
        num_teachers: int,
        *,
        mode: Literal["learned", "uniform"] = "learned",
        hidden_dims: Sequence[int] = (),
        activation: type[nn.Module] = nn.ELU,
        weight_floor: float = 0.0,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        if mode not in _MODES:
            raise ValueError(f"{where}: mode must be one of {_MODES}, got {mode!r}.")
        self.teacher_dim, self.student_dim, self.num_teachers = check_dims(
            (teacher_dim, student_dim, num_teachers), "teacher_dim/student_dim/num_teachers", where
        )
        self.hidden_dims = check_dims(hidden_dims, "hidden_dims", where)
        weight_floor = float(weight_floor)
        if weight_floor < 0 or self.num_teachers * weight_floor >= 1:
            raise ValueError(
                f"{where}: weight_floor must satisfy 0 <= f and N * f < 1 (N={self.num_teachers}), "
                f"got f={weight_floor}."
            )
        self.mode = mode
        self.weight_floor = weight_floor
        self.f_weight = (
            MLP(
                in_features=self.teacher_dim + self.student_dim,
                out_features=1,
                num_cells=list(self.hidden_dims),
                activation_class=activation,
            )
            if mode == "learned"
            else None
        )

    def _check(self, teacher_feature: torch.Tensor, feature: torch.Tensor, where: str) -> None:
        check_tensor(teacher_feature, "teacher_feature", where, min_ndim=2)
        check_tensor(feature, "feature", where)
        check_last_dim(teacher_feature, self.teacher_dim, "teacher_feature", where)
        check_last_dim(feature, self.student_dim, "feature", where)
        if teacher_feature.shape[0] != self.num_teachers:
            raise ValueError(
                f"{where}: teacher_feature must have the teacher axis first with "
                f"N={self.num_teachers}, got shape {tuple(teacher_feature.shape)}."
            )
        if teacher_feature.shape[1:-1] != feature.shape[:-1]:
            raise ValueError(
                f"{where}: batch dims differ: teacher_feature {tuple(teacher_feature.shape)} "
                f"is [N, *B, T, F_t] but feature {tuple(feature.shape)} is [*B, T, F_s]."
            )

    def logits(self, teacher_feature: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """``f_weight([s^i, e])`` for every teacher.

        Args:
            teacher_feature: ``[N, *B, T, F_t]``.
            feature: ``[*B, T, F_s]``.

        Returns:
            ``[N, *B, T]`` logits (zeros in uniform mode).

        Raises:
            TypeError, ValueError: see :meth:`forward`.
        """
        self._check(teacher_feature, feature, f"{type(self).__name__}.logits")
        if self.f_weight is None:
            return teacher_feature.new_zeros(teacher_feature.shape[:-1])
        student = feature.unsqueeze(0).expand(*teacher_feature.shape[:-1], feature.shape[-1])
        return self.f_weight(torch.cat([teacher_feature, student], dim=-1)).squeeze(-1)

    def forward(self, teacher_feature: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """Similarity weights ``w`` (Eq. 3, with the optional floor).

        Args:
            teacher_feature: ``[N, *B, T, F_t]`` teacher state features (``T`` optional).
            feature: ``[*B, T, F_s]`` student feature ``e_t``.

        Returns:
            ``w`` of shape ``[N, *B, T]``: sums to 1 over ``N``, each entry ``>= weight_floor``.

        Raises:
            TypeError: an input is not a floating-point tensor.
            ValueError: wrong feature sizes, teacher axis not ``N``, or mismatched batch dims.
        """
        if self.f_weight is None:
            self._check(teacher_feature, feature, f"{type(self).__name__}.forward")
            return teacher_feature.new_full(teacher_feature.shape[:-1], 1.0 / self.num_teachers)
        w = torch.softmax(self.logits(teacher_feature, feature), dim=0)
        if self.weight_floor > 0:
            w = self.weight_floor + (1.0 - self.num_teachers * self.weight_floor) * w
        return w

    @staticmethod
    def select_task(weights: torch.Tensor) -> torch.Tensor:
        """The most similar source task: ``k = argmax_i w^i`` (Algorithm 1, lines 13 and 23).

        Args:
            weights: ``[N, *B, T]`` or ``[N, *B]``.

        Returns:
            int64 ``[*B, T]`` or ``[*B]`` task indices.

        Raises:
            TypeError: ``weights`` is not a floating-point tensor.
            ValueError: ``weights`` has no teacher axis (0-dim).
        """
        check_tensor(weights, "weights", "SimilarityWeights.select_task", min_ndim=1)
        # exact ties (the uniform ablation) are broken uniformly at random instead of always picking 0
        ties = weights == weights.amax(dim=0, keepdim=True)
        return (ties.to(weights.dtype) + torch.rand_like(weights) * 0.5).argmax(dim=0)

    def extra_repr(self) -> str:
        return (
            f"teacher_dim={self.teacher_dim}, student_dim={self.student_dim}, "
            f"num_teachers={self.num_teachers}, mode={self.mode!r}, "
            f"weight_floor={self.weight_floor}"
        )


class SimilarityWeightsModule(TensorDictModuleBase):
    """:class:`SimilarityWeights` as a TensorDict module (writes weights and the selected task).

    A TensorDict with batch ``[*B, T]`` cannot hold a leading teacher axis, so in
    TensorDicts the teacher axis sits right after the batch dims: the module reads
    ``teacher_feature`` as ``[*B, T, N, F_t]`` and ``feature`` as ``[*B, T, F_s]``, and writes
    ``similarity_weights`` as ``[*B, T, N]`` and ``task_index`` (int64 ``[*B, T]``,
    ``argmax_i w^i``). The tensor API of :class:`SimilarityWeights` keeps ``N`` first.

    Args:
        similarity: the :class:`SimilarityWeights` to run.

    Keyword Args:
        teacher_key: input key of the teacher features. Default ``"teacher_feature"``.
        feature_key: input key of the student feature. Default ``"feature"``.
        weights_key: output key of the weights. Default ``"similarity_weights"``.
        task_key: output key of the selected task; ``None`` to skip. Default ``"task_index"``.

    Raises:
        TypeError: ``similarity`` is not a :class:`SimilarityWeights`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> module = SimilarityWeightsModule(SimilarityWeights(8, 6, num_teachers=3))
        >>> td = TensorDict(
        ...     {"teacher_feature": torch.randn(4, 5, 3, 8), "feature": torch.randn(4, 5, 6)}, [4, 5]
        ... )
        >>> td = module(td)
        >>> td["similarity_weights"].shape, td["task_index"].shape
        (torch.Size([4, 5, 3]), torch.Size([4, 5]))
    """

    def __init__(
        self,
        similarity: SimilarityWeights,
        *,
        teacher_key: NestedKey = "teacher_feature",
        feature_key: NestedKey = "feature",
        weights_key: NestedKey = "similarity_weights",
        task_key: NestedKey | None = "task_index",
    ) -> None:
        super().__init__()
        if not isinstance(similarity, SimilarityWeights):
            raise TypeError(
                f"SimilarityWeightsModule: expected a SimilarityWeights, got {type(similarity).__name__}."
            )
        self.similarity = similarity
        self.in_keys = [teacher_key, feature_key]
        self.out_keys = [weights_key] + ([task_key] if task_key is not None else [])

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Read the features, write ``similarity_weights`` ``[*B, T, N]`` (and ``task_index``)."""
        teacher_key, feature_key = self.in_keys
        teacher = tensordict.get(teacher_key)
        if not isinstance(teacher, torch.Tensor) or teacher.ndim < 2:
            raise ValueError(
                f"SimilarityWeightsModule: {teacher_key!r} must be a [*B, T, N, F_t] tensor, "
                f"got {getattr(teacher, 'shape', type(teacher).__name__)}."
            )
        w = self.similarity(teacher.movedim(-2, 0), tensordict.get(feature_key))
        tensordict.set(self.out_keys[0], w.movedim(0, -1))
        if len(self.out_keys) > 1:
            tensordict.set(self.out_keys[1], SimilarityWeights.select_task(w))
        return tensordict
