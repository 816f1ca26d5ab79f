"""The frozen source world models of Vid2Act (the teachers), evaluated in one batched call."""
from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch.nn import functional as F

from vid2act.components.world_model import WorldModel, WorldModelConfig

__all__ = [
    "CHECKPOINT_KIND",
    "LAYOUTS",
    "TEACHER_INPUTS",
    "TeacherBank",
    "teacher_checkpoint",
]

#: Valid values of ``TeacherBank(layout=...)``.
LAYOUTS = ("mixture", "ensemble")
#: Valid values of ``TeacherBank(teacher_input=...)``.
TEACHER_INPUTS = ("own_posterior", "student_state")
#: ``checkpoint["kind"]`` of a teacher checkpoint (written by ``vid2act.agents.pretrain``).
CHECKPOINT_KIND = "vid2act/teachers"
_CHECKPOINT_VERSION = 1
_CHECKPOINT_KEYS = ("layout", "num_teachers", "model_config", "action_dim", "source_tasks", "weights")
# vmap has no batching rule for aten::gru_cell (and TorchRL's one-hot scatter_): it falls back to a
# per-teacher loop in C++ for those ops only and warns on every new call site.
_VMAP_FALLBACK = "There is a performance drop because we have not yet implemented the batching rule"


class TeacherBank(TensorDictModuleBase):
    """``N`` frozen source world models ``{F^i}`` (Vid2Act Eq. 1) evaluated together.

    Every verb runs all ``N`` teachers in ONE call under ``torch.no_grad()``, never a Python loop
    over teachers:

    * ``layout="mixture"`` (default, the authors' released code): one :class:`WorldModel` with
      ``label_dim = N``; teacher ``i`` is that network run with the one-hot task label ``i``. The
      inputs are expanded to ``[N, *B, ...]`` with label ``i`` on slice ``i`` and run as one batch.
    * ``layout="ensemble"``: ``N`` independent :class:`WorldModel` s of one architecture. Their
      parameters are stacked with :meth:`tensordict.TensorDict.from_modules` (a
      :class:`~tensordict.nn.TensorDictParams` with batch ``[N]``) and swapped into one
      parameter-less copy of the model (on the ``meta`` device) inside ``torch.vmap(...,
      randomness="different")``. vmap has no batching rule for ``gru_cell``: PyTorch runs that op
      per teacher in C++ (still one Python call); the convolutions and linear layers are batched.

    Teacher features ``s_t^i = cat[belief, state]`` (``F_t = belief_dim + state_dim``) come from
    ``teacher_input``:

    * ``"own_posterior"`` (default): each teacher filters the target frames with its own
      posterior ``q_i(s_t | s_{t-1}, a_{t-1}, o_t)``.
    * ``"student_state"``: each teacher's prior stepped from the student's posterior at ``t - 1``,
      ``s_t^i ~ p_i(s_t | e_{t-1}, a_{t-1})`` (paper §4.3: "we first transit this state to the next
      time step individually using the teacher models"). The student's ``(belief, state)`` must
      have the teachers' sizes.

    The teachers are frozen: ``requires_grad=False`` on every parameter and always in eval mode
    (``train()`` is a no-op). Actions narrower than the teachers' ``action_dim`` are zero-padded
    (as :func:`~vid2act.components.data.pad_action_dim` pads the source data); wider ones are an error.

    Why our own module and not :class:`tensordict.nn.EnsembleModule`: that module re-initialises
    the copies (we load trained weights), vmaps one ``forward`` (we need several verbs: encode,
    filter a sequence, one filtering step, one prior step) and does not cover the ``mixture`` layout.

    TensorDict keys (:meth:`forward`, renamed with :meth:`set_keys`): by default the bank reads Dreamer
    rows (``prev_action`` ``a_{t-1}`` and ``is_first`` on row ``t``, as the replay buffers of this
    library store them). A TorchRL rollout holds ``action`` (``a_t``, taken after ``o_t``) and the
    ``InitTracker``'s ``is_init`` instead: ``set_keys(action="action", is_init="is_init")`` makes
    :meth:`forward` build ``a_{t-1}`` by shifting ``action`` one step along ``T`` and read the episode
    starts from ``is_init``. The action before a slice is not in it, so with ``action`` set, row 0 of
    every slice starts a fresh filter (``is_first[0] = True``).

    Mid-episode slices: a slice that starts inside an episode with ``is_first[0] = False`` is still
    filtered from the initial (zero) latent -- there is no earlier state to carry -- but its first
    prior step uses the recorded ``prev_action[0]`` where an episode start would use a zero action. The
    posterior sees ``o_0`` from row 0 on, so the features converge to those of a filter run from the
    episode start within a few rows; the first rows are a burn-in. Set ``is_first[..., 0] = True`` to
    treat every slice as a fresh start (as ``set_keys(action=...)`` does).

    Args:
        models: ``mixture``: one :class:`WorldModel` with ``label_dim = N``; ``ensemble``: a
            sequence of ``N`` :class:`WorldModel` s with identical architectures and no label. The
            bank keeps its own copies: the caller's modules are never modified.

    Keyword Args:
        layout: ``"mixture"`` or ``"ensemble"``.
        num_teachers: ``N``; default: the mixture model's ``label_dim`` / the number of models.
        teacher_input: ``"own_posterior"`` or ``"student_state"``.
        sample: sample the teachers' latents (``True``, as the released code's ``observe``) or take
            their mode (deterministic features).
        student_dims: ``(belief_dim, state_dim)`` of the student; when given, ``student_state`` sizes
            are checked here instead of at the first call.
        source_tasks: names of the ``N`` sources, in teacher order (default ``"teacher_<i>"``).

    Attributes:
        num_teachers (int): ``N``, the number of teachers (sources); the size of the teacher axis of
            every output.
        feature_dim (int): ``F_t = belief_dim + state_dim``, the size of one teacher feature ``s_t^i``
            (the ``teacher_dim`` of :class:`DistillHead` / :class:`SimilarityWeights`).
        belief_dim (int): size of a teacher's deterministic state (GRU belief).
        state_dim (int): size of a teacher's flattened stochastic state.
        embed_dim (int): ``E``, size of a teacher's image embedding (:meth:`encode`).
        action_dim (int): the (zero-padded) action width the teachers were pretrained with; narrower
            actions are padded to it.
        layout (str): ``"mixture"`` or ``"ensemble"``.
        teacher_input (str): ``"own_posterior"`` or ``"student_state"``.
        sample (bool): whether the teachers' latents are sampled (else their mode is taken).
        source_tasks (tuple[str, ...]): the ``N`` source names, in teacher order.
        config (WorldModelConfig | None): the teachers' model config (``None`` for models built
            without one).
        metadata (dict): extra entries of the checkpoint :meth:`from_checkpoint` read (per-source
            action dims, image size, dataset manifests, gradient steps); empty otherwise.
        tensor_keys: the TensorDict keys :meth:`forward` reads and writes (fields of
            ``TeacherBank._AcceptedKeys``; change them with :meth:`set_keys`).
        in_keys (list): the keys :meth:`forward` reads (follows :attr:`tensor_keys`); ``pixels`` may be
            replaced by the cached ``teacher_embed``.
        out_keys (list): ``[tensor_keys.teacher_feature]``.
        model (WorldModel): the one label-conditioned network (``mixture`` only).
        params (TensorDictParams): the ``N`` stacked parameter sets, batch ``[N]`` (``ensemble`` only).

    Raises:
        TypeError: a model is not a :class:`WorldModel`.
        ValueError: unknown ``layout`` / ``teacher_input``; a mixture model without a label, or
            whose ``label_dim`` differs from ``num_teachers``; ensemble models with labels or
            different architectures; ``len(source_tasks) != N``; ``student_dims`` that differ from
            the teachers' latent sizes with ``teacher_input="student_state"``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from vid2act.components.world_model import make_world_model
        >>> bank = TeacherBank(make_world_model("tiny", action_dim=4, label_dim=3, reward_head=False))
        >>> bank.num_teachers, bank.feature_dim  # N, F_t
        (3, 96)
        >>> pixels = torch.zeros(2, 5, 3, 64, 64, dtype=torch.uint8)
        >>> is_first = torch.zeros(2, 5, 1, dtype=torch.bool)
        >>> bank.teacher_features(pixels, torch.zeros(2, 5, 4), is_first).shape  # [N, B, T, F_t]
        torch.Size([3, 2, 5, 96])
        >>> models = [make_world_model("tiny", action_dim=4, reward_head=False) for _ in range(3)]
        >>> TeacherBank(models, layout="ensemble").encode(pixels).shape  # [N, B, T, E]
        torch.Size([3, 2, 5, 256])

        A ``[B, T]`` slice of a TorchRL rollout (``action`` is ``a_t``, ``is_init`` from ``InitTracker``):

        >>> bank.set_keys(action="action", is_init="is_init")
        >>> rollout = TensorDict({"pixels": pixels, "action": torch.rand(2, 5, 4) * 2 - 1,
        ...                       "is_init": torch.zeros(2, 5, 1, dtype=torch.bool)}, [2, 5])
        >>> bank(rollout)["teacher_feature"].shape  # [B, T, N, F_t]
        torch.Size([2, 5, 3, 96])
    """

    @dataclasses.dataclass
    class _AcceptedKeys:
        """TensorDict keys of :meth:`TeacherBank.forward` (set with :meth:`TeacherBank.set_keys`).

        Attributes:
            pixels (NestedKey): frames ``o_t`` ``[*B, T, 3, 64, 64]`` uint8. Default ``"pixels"``.
            prev_action (NestedKey): ``a_{t-1}`` of each row ``[*B, T, A']`` (Dreamer rows). Default
                ``"prev_action"``; ignored when ``action`` is set.
            is_first (NestedKey): episode starts ``[*B, T, 1]`` bool (Dreamer rows). Default
                ``"is_first"``; ignored when ``is_init`` is set.
            action (NestedKey | None): ``a_t`` of each row (a TorchRL rollout); when set, ``a_{t-1}``
                is this key shifted one step along ``T`` and row 0 starts a fresh filter. Default ``None``.
            is_init (NestedKey | None): TorchRL ``InitTracker`` flag ``[*B, T, 1]``, read instead of
                ``is_first`` when set. Default ``None``.
            teacher_embed (NestedKey): cached teacher embeddings ``[*B, T, N, E]``, read instead of
                ``pixels`` when present. Default ``"teacher_embed"``.
            belief (NestedKey): the student posterior's belief (``student_state``). Default ``"belief"``.
            state (NestedKey): the student posterior's state (``student_state``). Default ``"state"``.
            teacher_feature (NestedKey): written: ``[*B, T, N, F_t]``. Default ``"teacher_feature"``.
        """

        pixels: NestedKey = "pixels"
        prev_action: NestedKey = "prev_action"
        is_first: NestedKey = "is_first"
        action: NestedKey | None = None
        is_init: NestedKey | None = None
        teacher_embed: NestedKey = "teacher_embed"
        belief: NestedKey = "belief"
        state: NestedKey = "state"
        teacher_feature: NestedKey = "teacher_feature"

    default_keys = _AcceptedKeys

    def __init__(
        self,
        models: WorldModel | Sequence[WorldModel],
        *,
        layout: str = "mixture",
        num_teachers: int | None = None,
        teacher_input: str = "own_posterior",
        sample: bool = True,
        student_dims: tuple[int, int] | None = None,
        source_tasks: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        where = "TeacherBank"
        if layout not in LAYOUTS:
            raise ValueError(f"{where}: layout must be one of {LAYOUTS}, got {layout!r}.")
        if teacher_input not in TEACHER_INPUTS:
            raise ValueError(f"{where}: teacher_input must be one of {TEACHER_INPUTS}, got {teacher_input!r}.")
        self.layout = layout
        self.teacher_input = teacher_input
        self.sample = bool(sample)
        if layout == "mixture":
            model = models[0] if isinstance(models, Sequence) and len(models) == 1 else models
            _check_model(model, f"{where}(layout='mixture')")
            if not model.label_dim:
                raise ValueError(
                    f"{where}: layout='mixture' needs a WorldModel built with label_dim=N (one-hot task "
                    "label); got label_dim=0. Pass N unlabelled models with layout='ensemble' instead."
                )
            n = model.label_dim if num_teachers is None else num_teachers
            if n != model.label_dim:
                raise ValueError(f"{where}: num_teachers={n} but the mixture model has label_dim={model.label_dim}.")
            self.model = copy.deepcopy(model)
            reference = self.model
        else:
            if isinstance(models, WorldModel) or not isinstance(models, Iterable):
                raise TypeError(f"{where}: layout='ensemble' needs a sequence of WorldModels, got {type(models).__name__}.")
            models = list(models)
            if not models:
                raise ValueError(f"{where}: layout='ensemble' needs at least one WorldModel.")
            for i, m in enumerate(models):
                _check_model(m, f"{where}(layout='ensemble'): models[{i}]")
                if m.label_dim:
                    raise ValueError(
                        f"{where}: ensemble teachers take no task label, but models[{i}] has label_dim={m.label_dim}."
                    )
            _check_same_architecture(models, where)
            n = len(models) if num_teachers is None else num_teachers
            if n != len(models):
                raise ValueError(f"{where}: num_teachers={n} but {len(models)} models were given.")
            self.params = TensorDict.from_modules(*models, as_module=True)
            # A parameter-less copy the stacked parameters are swapped into; kept out of the module
            # tree so that .to(device) / state_dict only see `params`.
            object.__setattr__(self, "_base", copy.deepcopy(models[0]).to("meta"))
            reference = self._base
        self.num_teachers = n
        self.action_dim = reference.action_dim
        self.belief_dim = reference.rssm.belief_dim
        self.state_dim = reference.rssm.state_dim
        self.feature_dim = reference.feature_dim
        self.embed_dim = reference.rssm.embed_dim
        self.config = getattr(reference, "config", None)
        tasks = tuple(source_tasks) if source_tasks is not None else tuple(f"teacher_{i}" for i in range(n))
        if len(tasks) != n:
            raise ValueError(f"{where}: {len(tasks)} source_tasks {list(tasks)} for {n} teachers.")
        self.source_tasks = tasks
        #: Extra information of a checkpoint (per-source action dims, image size, manifests, steps).
        self.metadata: dict[str, Any] = {}
        if student_dims is not None and teacher_input == "student_state":
            self._check_student_sizes(*student_dims, where)
        self.requires_grad_(False)
        super().train(False)
        self.tensor_keys = self._AcceptedKeys()
        self._set_in_out_keys()

    # ------------------------------------------------------------------ tensordict keys
    def set_keys(self, **keys: NestedKey | None) -> None:
        """Rename the TensorDict keys :meth:`forward` reads and writes (as TorchRL's ``LossModule.set_keys``).

        ``set_keys(action="action", is_init="is_init")`` reads a TorchRL rollout (``a_t`` and the
        ``InitTracker`` flag) instead of Dreamer rows (``prev_action``, ``is_first``); see the class.

        Args:
            **keys: field of ``TeacherBank._AcceptedKeys`` -> new key; ``None`` restores the field's
                default (for ``action`` / ``is_init``: not read).

        Raises:
            ValueError: a name that is not a field of ``TeacherBank._AcceptedKeys``.
        """
        fields = [f.name for f in dataclasses.fields(self._AcceptedKeys)]
        unknown = sorted(set(keys) - set(fields))
        if unknown:
            raise ValueError(f"TeacherBank.set_keys: {unknown} not accepted; the keys are {fields}.")
        defaults = self._AcceptedKeys()
        for name, value in keys.items():
            setattr(self.tensor_keys, name, getattr(defaults, name) if value is None else value)
        self._set_in_out_keys()

    def _set_in_out_keys(self) -> None:
        k = self.tensor_keys
        action = k.prev_action if k.action is None else k.action
        first = k.is_first if k.is_init is None else k.is_init
        if self.teacher_input == "own_posterior":
            self.in_keys = [k.pixels, action, first]
        else:
            self.in_keys = [action, first, k.belief, k.state]
        self.out_keys = [k.teacher_feature]

    # ------------------------------------------------------------------ module state
    def train(self, mode: bool = True) -> TeacherBank:
        """No-op: the teachers stay in eval mode (they are frozen)."""
        return super().train(False)

    def extra_repr(self) -> str:
        return (f"layout={self.layout!r}, num_teachers={self.num_teachers}, teacher_input={self.teacher_input!r}, "
                f"feature_dim={self.feature_dim}, action_dim={self.action_dim}, sample={self.sample}")

    def _device(self) -> torch.device:
        tensors = self.model.parameters() if self.layout == "mixture" else self.params.values(True, True)
        return next(iter(tensors)).device

    def teacher_model(self, index: int) -> tuple[WorldModel, torch.Tensor | None]:
        """Teacher ``index`` alone, as a world model and its task label, for diagnostics (videos, errors).

        The batched verbs above are what training uses; this gives one teacher to code that takes a
        :class:`WorldModel` (e.g. :func:`~vid2act.agents.open_loop.open_loop_prediction`).

        Args:
            index: teacher ``i`` in ``[0, N)``.

        Returns:
            ``(model, label)``: ``layout="mixture"``: the shared model and the one-hot label ``[N]`` of
            teacher ``i`` (expand it to the batch as ``task_label``); ``layout="ensemble"``: a frozen copy
            of teacher ``i``'s model and ``None``. The model shares no parameter the bank trains (it has none).

        Raises:
            IndexError: ``index`` outside ``[0, N)``.
        """
        if not 0 <= index < self.num_teachers:
            raise IndexError(f"TeacherBank.teacher_model: index {index} outside [0, {self.num_teachers}).")
        if self.layout == "mixture":
            return self.model, torch.eye(self.num_teachers, device=self._device())[index]
        model = copy.deepcopy(self._base).to_empty(device=self._device())
        model.load_state_dict(self.params[index].flatten_keys(".").to_dict())
        return model.requires_grad_(False).eval(), None

    # ------------------------------------------------------------------ the batched call
    def _label(self, batch_shape: torch.Size) -> torch.Tensor:
        """One-hot labels ``[N, *rest, N]`` with label ``i`` on slice ``i`` (``batch_shape[0] == N``)."""
        n = self.num_teachers
        eye = torch.eye(n, device=self._device())
        return eye.reshape(n, *([1] * (len(batch_shape) - 1)), n).expand(*batch_shape, n)

    def _run(
        self, fn: Callable[..., Any], shared: Sequence[torch.Tensor] = (), paired: Sequence[torch.Tensor] = ()
    ) -> Any:
        """``fn(model, label, *shared, *paired)`` for all ``N`` teachers in one call.

        ``shared`` inputs ``[*S]`` are seen by every teacher; ``paired`` inputs ``[N, *S]`` give
        teacher ``i`` its slice ``i``. Outputs (tensors or tuples of tensors) get a leading ``N``.
        ``label`` is a callable ``batch_shape -> one-hot [*batch_shape, N]`` (mixture) or ``None``.
        """
        if self.layout == "mixture":
            n = self.num_teachers
            expanded = [x.expand(n, *x.shape) for x in shared]
            return fn(self.model, self._label, *expanded, *paired)
        base = self._base

        def call(params, *args):
            with params.to_module(base):
                return fn(base, None, *args)

        in_dims = (0,) + (None,) * len(shared) + (0,) * len(paired)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_VMAP_FALLBACK)
            return torch.vmap(call, in_dims, randomness="different")(self.params, *shared, *paired)

    def _encode_shared(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[*S, 3, 64, 64] -> [N, *S, E]``; the mixture runs the first convolution once for all labels."""
        if self.layout == "mixture":
            eye = torch.eye(self.num_teachers, device=self._device())
            return self.model.encoder.forward_shared(pixels, eye)
        return self._run(_encode, shared=(pixels,))

    # ------------------------------------------------------------------ input checks
    def _actions(self, action: torch.Tensor, name: str, where: str) -> torch.Tensor:
        if not isinstance(action, torch.Tensor) or not action.is_floating_point():
            raise TypeError(f"TeacherBank.{where}: {name} must be a floating-point tensor [..., A].")
        width = action.shape[-1]
        if width > self.action_dim:
            raise ValueError(
                f"TeacherBank.{where}: {name} has {width} action dims but the teachers were pretrained with "
                f"action_dim={self.action_dim}; pretrain them with action_dim >= {width} (zero-padding)."
            )
        return F.pad(action, (0, self.action_dim - width)) if width < self.action_dim else action

    def _flags(self, is_first: torch.Tensor, batch: tuple, where: str) -> torch.Tensor:
        if not isinstance(is_first, torch.Tensor):
            raise TypeError(f"TeacherBank.{where}: is_first must be a bool tensor {(*batch, 1)}.")
        if tuple(is_first.shape) == batch:
            is_first = is_first.unsqueeze(-1)
        if tuple(is_first.shape) != (*batch, 1):
            raise ValueError(
                f"TeacherBank.{where}: is_first must have shape {(*batch, 1)}, got {tuple(is_first.shape)}."
            )
        return is_first.bool()

    def _check_batch(self, x: torch.Tensor, batch: tuple, name: str, where: str) -> None:
        if tuple(x.shape[: len(batch)]) != batch:
            raise ValueError(
                f"TeacherBank.{where}: {name} has batch shape {tuple(x.shape[:len(batch)])}, expected {batch} "
                f"(got shape {tuple(x.shape)})."
            )

    def _check_embed(self, embed: torch.Tensor, batch: tuple, where: str) -> torch.Tensor:
        shape = (self.num_teachers, *batch, self.embed_dim)
        if not isinstance(embed, torch.Tensor) or tuple(embed.shape) != shape:
            got = tuple(embed.shape) if isinstance(embed, torch.Tensor) else type(embed).__name__
            raise ValueError(f"TeacherBank.{where}: embed must have shape [N, *B, E] = {shape}, got {got}.")
        params = self.model.parameters() if self.layout == "mixture" else self.params.values(True, True)
        return embed.to(next(iter(params)).dtype)

    def _check_student_sizes(self, belief_dim: int, state_dim: int, where: str) -> None:
        if (belief_dim, state_dim) != (self.belief_dim, self.state_dim):
            raise ValueError(
                f"{where}: teacher_input='student_state' steps the teachers' priors from the student's latent, "
                f"which needs equal sizes: teachers belief_dim={self.belief_dim}, state_dim={self.state_dim}; "
                f"student belief_dim={belief_dim}, state_dim={state_dim}. Use teacher_input='own_posterior' "
                "or a student of the teachers' model size."
            )

    @staticmethod
    def _pixels(pixels: torch.Tensor, where: str) -> torch.Tensor:
        if not isinstance(pixels, torch.Tensor) or pixels.ndim < 4:
            got = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
            raise ValueError(f"TeacherBank.{where}: pixels must be [*B, 3, 64, 64], got {got}.")
        return pixels

    # ------------------------------------------------------------------ verbs
    @torch.no_grad()
    def encode(self, pixels: torch.Tensor, *, paired: bool = False) -> torch.Tensor:
        """Every teacher's image embedding (frozen teachers: cacheable, as ``agent.cache_teacher_embed`` does).

        Args:
            pixels: frames ``[*B, 3, 64, 64]`` uint8; with ``paired=True`` ``[N, *B, 3, 64, 64]``
                and teacher ``i`` encodes slice ``i`` only (e.g. source ``i``'s frames).
            paired: see ``pixels``.

        Returns:
            Embeddings ``[N, *B, E]``.

        Raises:
            ValueError / TypeError: mis-shaped pixels (or a leading dim other than ``N`` when paired).
        """
        pixels = self._pixels(pixels, "encode")
        if paired:
            if pixels.shape[0] != self.num_teachers:
                raise ValueError(
                    f"TeacherBank.encode(paired=True): pixels need a leading teacher dim N={self.num_teachers}, "
                    f"got shape {tuple(pixels.shape)}."
                )
            return self._run(_encode, paired=(pixels,))
        return self._encode_shared(pixels)

    @torch.no_grad()
    def teacher_features(
        self,
        pixels: torch.Tensor | None,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        *,
        embed: torch.Tensor | None = None,
        student_belief: torch.Tensor | None = None,
        student_state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher state features ``s_t^i`` of a batch of target sequences (input of Eq. 3-4).

        Args:
            pixels: target frames ``[*B, T, 3, 64, 64]`` uint8 (``own_posterior``; may be ``None``
                when ``embed`` is given, ignored with ``student_state``).
            prev_action: ``a_{t-1}`` of each row ``[*B, T, A']``, ``A' <= action_dim`` (zero-padded).
            is_first: ``[*B, T, 1]`` (or ``[*B, T]``) bool; the carried state resets there. A slice
                without ``is_first[..., 0]`` (mid-episode) starts from the initial latent but with
                ``prev_action[..., 0]``: see "Mid-episode slices" in the class docstring.
            embed: precomputed teacher embeddings ``[N, *B, T, E]`` of the frames (from
                :meth:`encode`), replacing the encoder pass (``own_posterior``).
            student_belief: the student posterior's belief ``[*B, T, belief_dim]`` (``student_state``).
            student_state: the student posterior's state ``[*B, T, state_dim]`` (``student_state``).

        Returns:
            ``[N, *B, T, F_t]``: ``own_posterior``: each teacher's posterior features over the
            sequence; ``student_state``: at row ``t`` teacher ``i``'s prior stepped from the
            student's ``(belief, state)`` of row ``t - 1`` and ``a_{t-1}`` (initial state on row 0
            and where ``is_first``).

        Raises:
            ValueError: missing or mis-shaped inputs, actions wider than ``action_dim``, a student
                latent of other sizes than the teachers' (``student_state``).
            TypeError: non-tensor inputs, non-float actions.
        """
        where = "teacher_features"
        if self.teacher_input == "student_state":
            if student_belief is None or student_state is None:
                raise ValueError(
                    f"TeacherBank.{where}: teacher_input='student_state' needs student_belief and student_state."
                )
            if student_belief.ndim < 2:
                raise ValueError(f"TeacherBank.{where}: student_belief must be [*B, T, D], got {tuple(student_belief.shape)}.")
            batch = tuple(student_belief.shape[:-1])
            self._check_student_sizes(student_belief.shape[-1], student_state.shape[-1], f"TeacherBank.{where}")
            self._check_batch(student_state, batch, "student_state", where)
            self._check_batch(prev_action, batch, "prev_action", where)
            is_first = self._flags(is_first, batch, where)
            # carried latent of row t = the student's posterior at row t - 1 (initial state on row 0)
            shift = lambda x: torch.cat([torch.zeros_like(x.narrow(-2, 0, 1)), x.narrow(-2, 0, x.shape[-2] - 1)], -2)  # noqa: E731
            return self._prior(shift(student_belief), shift(student_state), prev_action, is_first, where)
        if embed is None:
            if pixels is None:
                raise ValueError(f"TeacherBank.{where}: pass pixels or precomputed embed.")
            pixels = self._pixels(pixels, where)
            batch = tuple(pixels.shape[:-3])
        else:
            batch = tuple(embed.shape[1:-1])
        if len(batch) < 1:
            raise ValueError(f"TeacherBank.{where}: inputs must have a time dim [*B, T, ...].")
        self._check_batch(prev_action, batch, "prev_action", where)
        prev_action = self._actions(prev_action, "prev_action", where)
        is_first = self._flags(is_first, batch, where)
        if embed is None:
            embed = self._encode_shared(pixels)
        else:
            embed = self._check_embed(embed, batch, where)
        sample = self.sample

        def observe(model, label, prev_action, is_first, embed):
            lab = None if label is None else label(embed.shape[:-1])
            return model.rssm.observe(embed, prev_action, is_first, lab, sample=sample)["feature"]

        return self._run(observe, shared=(prev_action, is_first), paired=(embed,))

    @torch.no_grad()
    def source_features(
        self,
        pixels: torch.Tensor | None,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        *,
        embed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher ``i``'s posterior features on source ``i``'s sequences (state input of Eq. 6-7).

        Args:
            pixels: a balanced source batch ``[N, B, T, 3, 64, 64]`` uint8 (slice ``i`` from source
                ``i``, as ``MultiTaskOfflineData.sample`` gives); may be ``None`` with ``embed``.
            prev_action: ``[N, B, T, A']``, ``A' <= action_dim``.
            is_first: ``[N, B, T, 1]`` bool.
            embed: precomputed paired embeddings ``[N, B, T, E]`` (``encode(pixels, paired=True)``).

        Returns:
            ``[N, B, T, F_t]``.

        Raises:
            ValueError / TypeError: as :meth:`teacher_features`, or a leading dim other than ``N``.
        """
        where = "source_features"
        if embed is None:
            if pixels is None:
                raise ValueError(f"TeacherBank.{where}: pass pixels or precomputed embed.")
            batch = tuple(self._pixels(pixels, where).shape[:-3])
        else:
            batch = tuple(embed.shape[:-1])
        if len(batch) < 2 or batch[0] != self.num_teachers:
            raise ValueError(
                f"TeacherBank.{where}: inputs must be [N={self.num_teachers}, *B, T, ...] (one slice per source), "
                f"got batch shape {batch}."
            )
        self._check_batch(prev_action, batch, "prev_action", where)
        prev_action = self._actions(prev_action, "prev_action", where)
        is_first = self._flags(is_first, batch, where)
        embed = self._run(_encode, paired=(pixels,)) if embed is None else self._check_embed(embed, batch[1:], where)
        sample = self.sample

        def observe(model, label, prev_action, is_first, embed):
            lab = None if label is None else label(embed.shape[:-1])
            return model.rssm.observe(embed, prev_action, is_first, lab, sample=sample)["feature"]

        return self._run(observe, paired=(prev_action, is_first, embed))

    @torch.no_grad()
    def obs_step(
        self,
        belief: torch.Tensor | None,
        state: torch.Tensor | None,
        prev_action: torch.Tensor,
        pixels: torch.Tensor | None,
        is_first: torch.Tensor,
        *,
        embed: torch.Tensor | None = None,
    ) -> TensorDict:
        """One filtering step of every teacher while acting (``own_posterior``, Algorithm 1 line 23).

        The carried state uses the env layout: the teacher axis comes after the batch dims, so a
        TorchRL primer can hold it per env as ``[N, D]``.

        Args:
            belief: carried teacher beliefs ``[*B, N, belief_dim]`` (``None``: initial state).
            state: carried teacher states ``[*B, N, state_dim]`` (``None``: initial state).
            prev_action: ``a_{t-1}`` ``[*B, A']``, ``A' <= action_dim``.
            pixels: ``o_t`` ``[*B, 3, 64, 64]`` uint8 (may be ``None`` with ``embed``).
            is_first: ``[*B, 1]`` bool; the carried state resets where True.
            embed: precomputed embeddings ``[N, *B, E]`` of ``o_t``.

        Returns:
            TensorDict ``[*B, N]`` with ``"belief"``, ``"state"`` and ``"feature"`` ``[*B, N, F_t]``.

        Raises:
            ValueError / TypeError: mis-shaped inputs (see :meth:`teacher_features`).
        """
        where = "obs_step"
        if embed is None:
            if pixels is None:
                raise ValueError(f"TeacherBank.{where}: pass pixels or precomputed embed.")
            batch = tuple(self._pixels(pixels, where).shape[:-3])
        else:
            batch = tuple(embed.shape[1:-1])
        self._check_batch(prev_action, batch, "prev_action", where)
        prev_action = self._actions(prev_action, "prev_action", where)
        is_first = self._flags(is_first, batch, where)
        embed = self._encode_shared(pixels) if embed is None else self._check_embed(embed, batch, where)
        n = self.num_teachers
        carried = []
        for name, value, dim in (("belief", belief, self.belief_dim), ("state", state, self.state_dim)):
            if value is None:
                value = embed.new_zeros(*batch, n, dim)
            elif tuple(value.shape) != (*batch, n, dim):
                raise ValueError(f"TeacherBank.{where}: {name} must have shape {(*batch, n, dim)}, got {tuple(value.shape)}.")
            carried.append(value.movedim(-2, 0).to(embed.dtype))
        sample = self.sample

        def step(model, label, prev_action, is_first, embed, belief, state):
            lab = None if label is None else label(embed.shape[:-1])
            out = model.rssm.obs_step(belief, state, prev_action, embed, is_first, lab, sample=sample)
            return out["belief"], out["state"]

        new_belief, new_state = self._run(step, shared=(prev_action, is_first), paired=(embed, *carried))
        new_belief, new_state = new_belief.movedim(0, -2), new_state.movedim(0, -2)
        return TensorDict(
            {"belief": new_belief, "state": new_state, "feature": torch.cat([new_belief, new_state], -1)},
            batch_size=(*batch, n),
        )

    @torch.no_grad()
    def prior_features(
        self,
        belief: torch.Tensor,
        state: torch.Tensor,
        prev_action: torch.Tensor,
        is_first: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Every teacher's prior stepped once from a shared latent: ``s^i ~ p_i(s | e_{t-1}, a_{t-1})``.

        The ``student_state`` teacher input, for one step (acting) or any batch.

        Args:
            belief: ``[*B, belief_dim]`` (the student's belief at ``t - 1``).
            state: ``[*B, state_dim]`` (the student's state at ``t - 1``).
            prev_action: ``a_{t-1}`` ``[*B, A']``, ``A' <= action_dim``.
            is_first: optional ``[*B, 1]`` bool; where True the latent and action are reset to zeros
                first (an episode start has no previous latent).

        Returns:
            ``[N, *B, F_t]``.

        Raises:
            ValueError: latent sizes other than the teachers', mis-shaped inputs.
        """
        where = "prior_features"
        self._check_student_sizes(belief.shape[-1], state.shape[-1], f"TeacherBank.{where}")
        batch = tuple(belief.shape[:-1])
        self._check_batch(state, batch, "state", where)
        self._check_batch(prev_action, batch, "prev_action", where)
        flags = None if is_first is None else self._flags(is_first, batch, where)
        return self._prior(belief, state, prev_action, flags, where)

    def _prior(self, belief, state, prev_action, is_first, where) -> torch.Tensor:
        prev_action = self._actions(prev_action, "prev_action", where)
        if is_first is not None:
            belief = torch.where(is_first, 0.0, belief)
            state = torch.where(is_first, 0.0, state)
            prev_action = torch.where(is_first, 0.0, prev_action)
        sample = self.sample

        def prior(model, label, belief, state, action):
            lab = None if label is None else label(belief.shape[:-1])
            return model.rssm.img_step(belief, state, action, lab, sample=sample)["feature"]

        return self._run(prior, shared=(belief, state, prev_action))

    # ------------------------------------------------------------------ TensorDict verb
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Write ``"teacher_feature"`` ``[*B, T, N, F_t]`` into a batch of target sequences (in place).

        A TensorDict of batch ``[*B, T]`` cannot hold a leading teacher axis, so the teacher axis
        sits right after ``T`` (the layout :class:`~vid2act.components.losses.DistillationLoss` reads).

        Reads (names from :attr:`tensor_keys`) ``"prev_action"`` and ``"is_first"`` -- or, once set,
        the TorchRL rollout's ``"action"`` (shifted: row ``t`` gets ``a_{t-1}``, row 0 a zero action and
        a fresh filter) and ``"is_init"`` -- and: ``own_posterior``: ``"pixels"``, or the cached
        ``"teacher_embed"`` ``[*B, T, N, E]`` when present; ``student_state``: the student's
        posterior ``"belief"`` and ``"state"`` (written by ``WorldModelLoss``).

        Args:
            tensordict: target sequences, batch ``[*B, T]`` (``T`` the time axis, last).

        Returns:
            ``tensordict``, with ``tensor_keys.teacher_feature`` set.

        Raises:
            KeyError: an input key is missing. ValueError / TypeError: see :meth:`teacher_features`.
        """
        keys = self.tensor_keys
        present = set(tensordict.keys(True))
        missing = [k for k in self.in_keys if k not in present
                   and not (k == keys.pixels and keys.teacher_embed in present)]
        if missing:
            raise KeyError(f"TeacherBank.forward: keys {missing} missing from the tensordict "
                           f"(keys: {sorted(map(str, present))}; rename them with set_keys).")
        prev_action, is_first = self._action_and_flags(tensordict)
        if self.teacher_input == "student_state":
            features = self.teacher_features(
                None, prev_action, is_first,
                student_belief=tensordict.get(keys.belief), student_state=tensordict.get(keys.state),
            )
        else:
            embed = tensordict.get(keys.teacher_embed, None)
            features = self.teacher_features(
                None if embed is not None else tensordict.get(keys.pixels), prev_action, is_first,
                embed=None if embed is None else embed.movedim(-2, 0),
            )
        tensordict.set(keys.teacher_feature, features.movedim(0, -2))
        return tensordict

    def _action_and_flags(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a_{t-1} [*B, T, A'], is_first [*B, T, 1])`` from Dreamer rows or a TorchRL rollout."""
        keys = self.tensor_keys
        flags = tensordict.get(keys.is_first if keys.is_init is None else keys.is_init)
        if keys.action is None:
            return tensordict.get(keys.prev_action), flags
        action = tensordict.get(keys.action)
        if not isinstance(action, torch.Tensor) or action.ndim < 2:
            raise ValueError(f"TeacherBank.forward: {keys.action!r} must be [*B, T, A], "
                             f"got {getattr(action, 'shape', type(action).__name__)}.")
        steps = action.shape[-2]
        prev_action = torch.cat([torch.zeros_like(action.narrow(-2, 0, 1)), action.narrow(-2, 0, steps - 1)], -2)
        flags = self._flags(flags, tuple(action.shape[:-1]), "forward").clone()
        flags[..., 0, :] = True  # the action before the slice is not in it: row 0 starts a fresh filter
        return prev_action, flags

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        *,
        teacher_input: str = "own_posterior",
        sample: bool = True,
        student_dims: tuple[int, int] | None = None,
        map_location: str | torch.device = "cpu",
    ) -> TeacherBank:
        """Build the bank from a teacher checkpoint of ``python -m vid2act.agents.pretrain``.

        Loaded with ``torch.load(..., weights_only=True)``. The checkpoint's extra information
        (per-source action dims, image size, dataset manifests, gradient steps) is kept in
        :attr:`metadata`; :attr:`source_tasks` names the teachers.

        Args:
            path: the checkpoint file (``<run>/teachers.pt``).
            teacher_input, sample, student_dims: see the class.
            map_location: device the weights are loaded to.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is unreadable, or not a teacher checkpoint (the message says what
                it found), or its weights do not fit its recorded model config.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TeacherBank.from_checkpoint: no checkpoint file at {path}; pretrain the teachers "
                                    "first (python -m vid2act.agents.pretrain ..., it writes <out_dir>/teachers.pt) "
                                    "or pass the path of an existing teachers.pt")
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # torch raises several types for truncated / foreign files
            raise ValueError(f"TeacherBank.from_checkpoint: cannot read {path} as a torch checkpoint: {err}") from err
        if not isinstance(state, Mapping) or state.get("kind") != CHECKPOINT_KIND:
            found = f"kind={state.get('kind')!r}, keys {sorted(state)}" if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"TeacherBank.from_checkpoint: {path} is not a teacher checkpoint (expected kind={CHECKPOINT_KIND!r} "
                f"written by `python -m vid2act.agents.pretrain`; found {found})."
            )
        missing = [k for k in _CHECKPOINT_KEYS if k not in state]
        if missing:
            raise ValueError(f"TeacherBank.from_checkpoint: {path} lacks {missing}; it may be from another version.")
        layout, n = state["layout"], int(state["num_teachers"])
        config = WorldModelConfig.from_dict(state["model_config"])  # no "gru" (older files): "torch"
        label_dim = n if layout == "mixture" else 0
        count = 1 if layout == "mixture" else n
        weights = state["weights"] if layout == "ensemble" else [state["weights"]]
        if len(weights) != count:
            raise ValueError(f"TeacherBank.from_checkpoint: {path} holds {len(weights)} weight sets for {count} models.")
        models = []
        for sd in weights:
            model = config.build(action_dim=int(state["action_dim"]), label_dim=label_dim,
                                 reward_head=bool(state.get("reward_head", False)))
            try:
                model.load_state_dict(sd)
            except RuntimeError as err:
                raise ValueError(f"TeacherBank.from_checkpoint: {path}: weights do not fit the model config: {err}") from err
            models.append(model.to(map_location))
        bank = cls(models[0] if layout == "mixture" else models, layout=layout, num_teachers=n,
                   teacher_input=teacher_input, sample=sample, student_dims=student_dims,
                   source_tasks=state["source_tasks"])
        bank.metadata = {k: v for k, v in state.items() if k not in ("weights", "optimizer", "kind")}
        return bank


def teacher_checkpoint(
    models: WorldModel | Sequence[WorldModel],
    *,
    layout: str,
    source_tasks: Sequence[str],
    action_dim: int,
    **extra: Any,
) -> dict[str, Any]:
    """The state :meth:`TeacherBank.from_checkpoint` reads (plain tensors and Python values only).

    Args:
        models: the trained teachers (one label-conditioned model for ``mixture``, ``N`` for ``ensemble``).
        layout: ``"mixture"`` or ``"ensemble"``.
        source_tasks: the ``N`` source names in teacher order.
        action_dim: the common (zero-padded) action dim the teachers were trained with.
        **extra: further plain entries (e.g. ``source_action_dims``, ``image_size``, ``manifests``,
            ``steps``, ``optimizer``, ``meta``).

    Returns:
        ``{"kind", "version", "layout", "num_teachers", "model_config", "action_dim",
        "reward_head", "source_tasks", "weights", **extra}``; ``weights`` is a state dict
        (``mixture``) or a list of ``N`` state dicts (``ensemble``).

    Raises:
        ValueError: unknown layout, a model without its ``WorldModelConfig``, or a teacher count
            that does not match ``source_tasks``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"teacher_checkpoint: layout must be one of {LAYOUTS}, got {layout!r}.")
    models = [models] if isinstance(models, WorldModel) else list(models)
    n = models[0].label_dim if layout == "mixture" else len(models)
    if (layout == "mixture" and len(models) != 1) or n != len(source_tasks):
        raise ValueError(f"teacher_checkpoint: {len(models)} {layout} model(s) for {len(source_tasks)} sources.")
    config = models[0].config
    if not isinstance(config, WorldModelConfig):
        raise ValueError("teacher_checkpoint: the models need their WorldModelConfig (build them with config.build).")
    weights = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]
    return {
        "kind": CHECKPOINT_KIND,
        "version": _CHECKPOINT_VERSION,
        "layout": layout,
        "num_teachers": n,
        "model_config": dataclasses.asdict(config),
        "action_dim": int(action_dim),
        "reward_head": models[0].has_reward_head,
        "source_tasks": list(source_tasks),
        "weights": weights[0] if layout == "mixture" else weights,
        **extra,
    }


def _encode(model: WorldModel, label, pixels: torch.Tensor) -> torch.Tensor:
    return model.encode(pixels, None if label is None else label(pixels.shape[:-3]))


def _check_model(model: object, where: str) -> None:
    if not isinstance(model, WorldModel):
        raise TypeError(f"{where}: expected a WorldModel, got {type(model).__name__}.")


def _check_same_architecture(models: Sequence[WorldModel], where: str) -> None:
    ref = {k: tuple(v.shape) for k, v in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        if shapes != ref:
            diff = sorted(set(ref.items()) ^ set(shapes.items()))[:4]
            raise ValueError(f"{where}: ensemble models must share one architecture; models[{i}] differs "
                             f"from models[0] (e.g. {diff}).")
