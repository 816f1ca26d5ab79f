"""DreamerV2's LayerNorm GRU cell (the RSSM's recurrent core with ``gru="layer_norm"``).

Why our own: TorchRL's V3 prior networks hold a plain :class:`torch.nn.GRUCell` (``"gru"``) or
DreamerV3's grouped RMSNorm block GRU (``"block_gru"``, which also replaces the input projection
and takes ``state``/``action`` itself); neither is DreamerV2's cell, and PyTorch has no GRU cell
with normalised gates.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LayerNormGRUCell", "GRUS"]

#: Valid values of ``RSSM(gru=...)`` / ``WorldModelConfig.gru``: ``"layer_norm"`` (this cell,
#: DreamerV2) and ``"torch"`` (:class:`torch.nn.GRUCell`, as TorchRL's networks).
GRUS = ("layer_norm", "torch")


class LayerNormGRUCell(nn.Module):
    """GRU cell of DreamerV2 (danijar/dreamerv2 ``common/nets.py``, ``GRUCell(norm=True)``).

    One fused linear layer over ``[input, state]`` gives the three gate pre-activations, normalised
    together by a LayerNorm before the split::

        parts = LayerNorm(Linear(cat[input, state]))          # [N, 3 H]
        reset, cand, update = split(parts, 3)
        reset = sigmoid(reset)
        cand = tanh(reset * cand)
        update = sigmoid(update + update_bias)                # update_bias = -1
        h' = update * cand + (1 - update) * state

    Unlike :class:`torch.nn.GRUCell` the reset gate scales the whole candidate pre-activation
    (input part included), and the ``-1`` update bias keeps about ``1 - sigmoid(-1) = 73 %`` of the
    state at initialisation, so gradients pass through long sequences early in training.

    Matches the reference in the details that change numbers: the linear layer has a bias
    (DreamerV2 builds it with ``use_bias=norm is not None``, True for both norm settings), Glorot
    (Xavier) uniform weights and zero bias (Keras ``Dense`` defaults), LayerNorm epsilon ``1e-3``
    (Keras ``LayerNormalization``); under autocast PyTorch runs the LayerNorm in float32, as
    DreamerV2 casts it.

    Same call signature as :class:`torch.nn.GRUCell`, so it replaces the ``.rnn`` of TorchRL's
    :class:`~torchrl.modules.RSSMPriorV3` and of our ``GaussianPrior``.

    Args:
        input_size: ``D``, size of the input.
        hidden_size: ``H``, size of the state.
        update_bias: added to the update gate's pre-activation (DreamerV2: ``-1``).
        norm: LayerNorm over the ``3 H`` pre-activations (DreamerV2's RSSM: True).

    Shapes:
        ``forward(input [N, D] or [D], hidden [N, H] or [H] or None) -> [N, H] (or [H])``;
        ``hidden=None`` is the zero state.

    Examples:
        >>> import torch
        >>> cell = LayerNormGRUCell(4, 8)
        >>> cell(torch.randn(3, 4), torch.zeros(3, 8)).shape
        torch.Size([3, 8])
    """

    def __init__(self, input_size: int, hidden_size: int, *, update_bias: float = -1.0, norm: bool = True) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"LayerNormGRUCell: sizes must be >= 1, got input_size={input_size}, "
                             f"hidden_size={hidden_size}.")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.update_bias = float(update_bias)
        self.linear = nn.Linear(input_size + hidden_size, 3 * hidden_size)
        self.norm = nn.LayerNorm(3 * hidden_size, eps=1e-3) if norm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras ``Dense`` initialisation (Glorot uniform, zero bias); LayerNorm scale 1, offset 0."""
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        if self.norm is not None:
            self.norm.reset_parameters()

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, update_bias={self.update_bias}, norm={self.norm is not None}"

    def forward(self, input: torch.Tensor, hidden: torch.Tensor | None = None) -> torch.Tensor:  # noqa: A002
        """One step; see the class docstring for the formula and shapes."""
        unbatched = input.dim() == 1
        if unbatched:
            input = input.unsqueeze(0)  # noqa: A001
            hidden = None if hidden is None else hidden.unsqueeze(0)
        if hidden is None:
            hidden = input.new_zeros(input.shape[0], self.hidden_size)
        parts = self.linear(torch.cat([input, hidden], dim=-1))
        if self.norm is not None:
            parts = self.norm(parts)
        reset, cand, update = parts.chunk(3, dim=-1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update + self.update_bias)
        out = update * cand + (1.0 - update) * hidden
        return out.squeeze(0) if unbatched else out
