"""``f_distill``: maps teacher states into the student's feature space (Vid2Act, Eq. 4)."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from tensordict import TensorDict
from torch import nn
from torchrl.modules import MLP

from ._checks import check_dims, check_last_dim, check_tensor


class DistillHead(nn.Module):
    """The distillation network ``f_distill`` of Vid2Act: ``u_t^i = f_distill(s_t^i)``.

    Maps the state feature of every teacher into the student's feature space, so the
    distillation loss (Eq. 4) can compare ``u_t^i`` with the student feature ``e_t``,
    and the generative action replay (Eq. 6) can read source states in the student's space.

    By default one network is shared by all teachers and it is a single linear layer, as in
    the authors' released code (``nn.Linear(F, F)``); ``hidden_dims`` turns it into an MLP.
    With ``per_teacher=True`` each teacher ``i`` gets its own network; the ``N`` copies are
    stacked into one :class:`~tensordict.nn.TensorDictParams` (``params``, batch ``[N]``) and
    run in a single ``torch.vmap`` call over the leading teacher axis, never a Python loop.
    We use our own small module (rather than :class:`tensordict.nn.EnsembleModule`) because
    the input already carries the teacher axis, the networks act on plain tensors, and
    EnsembleModule keeps an extra, unused copy of the parameters in the module.

    Args:
        teacher_dim: ``F_t``, size of a teacher state feature.
        student_dim: ``F_s``, size of the student feature ``e_t``.

    Keyword Args:
        hidden_dims: hidden layer sizes; ``()`` (default) is a linear map.
        activation: activation class between hidden layers (default ``nn.ELU``, DreamerV2's).
        per_teacher: one network per teacher (requires ``num_teachers``). Default ``False``.
        num_teachers: ``N``; required when ``per_teacher`` (a shared head ignores the
            teacher axis and maps any ``[..., F_t]`` input).

    Attributes:
        teacher_dim (int): ``F_t``, the input size.
        student_dim (int): ``F_s``, the output size.
        hidden_dims (tuple[int, ...]): hidden layer sizes (``()``: linear).
        per_teacher (bool): one network per teacher.
        num_teachers (int | None): ``N`` (``None`` for a shared head built without it).
        net (nn.Module): the shared network (``per_teacher=False`` only).
        params (TensorDictParams): the ``N`` stacked networks' parameters, batch ``[N]``
            (``per_teacher=True`` only).

    Raises:
        ValueError: a dimension is not a positive int, or ``per_teacher`` without
            ``num_teachers``.

    Examples:
        >>> import torch
        >>> head = DistillHead(8, 6)
        >>> head(torch.randn(3, 4, 5, 8)).shape  # [N, B, T, F_t] -> [N, B, T, F_s]
        torch.Size([3, 4, 5, 6])
        >>> head = DistillHead(8, 6, per_teacher=True, num_teachers=3, hidden_dims=(16,))
        >>> head(torch.randn(3, 4, 5, 8)).shape
        torch.Size([3, 4, 5, 6])
    """

    def __init__(
        self,
        teacher_dim: int,
        student_dim: int,
        *,
        hidden_dims: Sequence[int] = (),
        activation: type[nn.Module] = nn.ELU,
        per_teacher: bool = False,
        num_teachers: int | None = None,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.teacher_dim, self.student_dim = check_dims((teacher_dim, student_dim), "dims", where)
        self.hidden_dims = check_dims(hidden_dims, "hidden_dims", where)
        if num_teachers is not None:
            (num_teachers,) = check_dims((num_teachers,), "num_teachers", where)
        if per_teacher and num_teachers is None:
            raise ValueError(f"{where}: per_teacher=True needs num_teachers.")
        self.per_teacher = bool(per_teacher)
        self.num_teachers = num_teachers

        def make() -> MLP:
            return MLP(
                in_features=self.teacher_dim,
                out_features=self.student_dim,
                num_cells=list(self.hidden_dims),
                activation_class=activation,
            )

        if self.per_teacher:
            nets = [make() for _ in range(num_teachers)]
            self.params = TensorDict.from_modules(*nets, as_module=True)
            # Parameter-free template that vmap fills with each teacher's slice of
            # ``params``. Kept out of the module tree so it is neither in state_dict()
            # nor in parameters().
            self.__dict__["_template"] = copy.deepcopy(nets[0]).to("meta")
        else:
            self.net = make()

    def _call_one(self, params: TensorDict, x: torch.Tensor) -> torch.Tensor:
        with params.to_module(self._template):
            return self._template(x)

    def forward(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        """Map teacher features to the student feature space.

        Args:
            teacher_feature: ``[N, *B, T, F_t]`` (any dims between ``N`` and ``F_t``);
                a shared head also accepts inputs without a teacher axis, ``[*B, F_t]``.

        Returns:
            ``u`` of shape ``[N, *B, T, F_s]`` (same leading dims as the input).

        Raises:
            TypeError: the input is not a floating-point tensor.
            ValueError: wrong last dim, or (per-teacher head) the leading dim is not ``N``.
        """
        where = f"{type(self).__name__}.forward"
        x = check_tensor(teacher_feature, "teacher_feature", where, min_ndim=2 if self.per_teacher else 1)
        check_last_dim(x, self.teacher_dim, "teacher_feature", where)
        if self.per_teacher:
            if x.shape[0] != self.num_teachers:
                raise ValueError(
                    f"{where}: per-teacher head expects the teacher axis first with "
                    f"N={self.num_teachers}, got shape {tuple(x.shape)}."
                )
            return torch.vmap(self._call_one, in_dims=(0, 0))(self.params, x)
        return self.net(x)

    def extra_repr(self) -> str:
        return (
            f"teacher_dim={self.teacher_dim}, student_dim={self.student_dim}, "
            f"hidden_dims={self.hidden_dims}, per_teacher={self.per_teacher}, "
            f"num_teachers={self.num_teachers}"
        )
