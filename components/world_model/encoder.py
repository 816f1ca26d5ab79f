"""Convolutional pixel encoder of the DreamerV2 world model, with optional task-label channels."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvEncoder", "preprocess_pixels", "IMAGE_SHAPE"]

#: Shape ``(C, H, W)`` of every frame the world model reads and writes.
IMAGE_SHAPE = (3, 64, 64)


def preprocess_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """Convert frames to the centred float space the world model works in.

    ``uint8`` frames in ``[0, 255]`` become ``pixels.float() / 255 - 0.5`` (in ``[-0.5, 0.5]``);
    floating frames are taken as already converted and returned unchanged.

    Args:
        pixels: frames ``[*, 3, 64, 64]``, ``uint8`` or floating point.

    Returns:
        Float frames ``[*, 3, 64, 64]`` in ``[-0.5, 0.5]``.

    Raises:
        TypeError: if ``pixels`` is neither ``uint8`` nor floating point.
        ValueError: if the trailing shape is not ``(3, 64, 64)``.

    Examples:
        >>> import torch
        >>> preprocess_pixels(torch.full((2, 3, 64, 64), 255, dtype=torch.uint8)).max().item()
        0.5
    """
    if tuple(pixels.shape[-3:]) != IMAGE_SHAPE:
        raise ValueError(
            f"pixels must have trailing shape {IMAGE_SHAPE} (channels first), got {tuple(pixels.shape)}."
        )
    if pixels.dtype == torch.uint8:
        return pixels.float() / 255.0 - 0.5
    if pixels.is_floating_point():
        return pixels
    raise TypeError(f"pixels must be uint8 or floating point, got dtype {pixels.dtype}.")


class ConvEncoder(nn.Module):
    """DreamerV2 image encoder: 4 convolutions, kernel 4, stride 2, channels ``d, 2d, 4d, 8d``, ELU.

    A ``64x64`` frame becomes a ``2x2x8d`` map, flattened to ``embed_dim = 32 * d`` features.
    With ``label_dim = L > 0`` a one-hot task label ``[*, L]`` is tiled over the image as ``L``
    extra input channels (the ``mixture`` teacher layout of Vid2Act's released code).

    TorchRL's :class:`~torchrl.modules.ObsEncoder` has the same convolution layout but hard-codes
    ReLU; DreamerV2 uses ELU, and the uint8 conversion and label channels are ours, so this is a
    small module of its own.

    Memory layout: the convolution weights and activations are kept channels-last
    (``torch.channels_last``), the layout oneDNN (CPU) and cuDNN prefer; at 64x64 this makes the
    first, memory-bound convolution 2-2.5x faster than NCHW on an AVX2 CPU. The maths is unchanged:
    inputs may come in either layout, outputs are the same numbers.

    Args:
        depth: channel multiplier ``d`` (DreamerV2: 48).
        label_dim: size ``L`` of the one-hot task label; 0 for an unconditioned encoder.

    Raises:
        ValueError: if ``depth < 1`` or ``label_dim < 0``.

    Examples:
        >>> import torch
        >>> enc = ConvEncoder(depth=4, label_dim=2)
        >>> pixels = torch.zeros(5, 7, 3, 64, 64, dtype=torch.uint8)
        >>> enc(pixels, torch.eye(2)[torch.zeros(5, 7, dtype=torch.long)]).shape
        torch.Size([5, 7, 128])
    """

    def __init__(self, depth: int = 48, label_dim: int = 0) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}.")
        if label_dim < 0:
            raise ValueError(f"label_dim must be >= 0, got {label_dim}.")
        self.depth = depth
        self.label_dim = label_dim
        channels = [IMAGE_SHAPE[0] + label_dim, depth, 2 * depth, 4 * depth, 8 * depth]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2), nn.ELU()]
        self.net = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.embed_dim = 8 * depth * 2 * 2

    def forward(self, pixels: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """Encode frames.

        Args:
            pixels: frames ``[*, 3, 64, 64]``, ``uint8`` (converted inside) or float in ``[-0.5, 0.5]``.
            label: one-hot task label ``[*, L]``; required iff ``label_dim > 0``.

        Returns:
            Embeddings ``[*, embed_dim]``.

        Raises:
            ValueError: on a missing, unexpected or mis-shaped label, or bad pixel shape.
            TypeError: on a pixel dtype that is neither uint8 nor floating point.
        """
        x = preprocess_pixels(pixels)
        batch = x.shape[:-3]
        x = _channels_last(x.reshape(-1, *IMAGE_SHAPE))
        if self.label_dim:
            if label is None:
                raise ValueError(f"ConvEncoder(label_dim={self.label_dim}) needs a task label [*, L].")
            if tuple(label.shape) != (*batch, self.label_dim):
                raise ValueError(
                    f"label must have shape {(*batch, self.label_dim)} to match pixels "
                    f"{tuple(pixels.shape)}, got {tuple(label.shape)}."
                )
            h = self._first_conv(x) + self._label_bias(label.reshape(-1, self.label_dim))[..., None, None]
            return self.net[1:](h).reshape(*batch, self.embed_dim)
        if label is not None:
            raise ValueError("ConvEncoder was built with label_dim=0 but received a task label.")
        return self.net(x).reshape(*batch, self.embed_dim)

    def forward_shared(self, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Encode the same frames under ``K`` labels: ``forward(pixels, labels[k])`` for every ``k`` at once.

        The frames pass the first convolution once (not ``K`` times): the label planes are constant over
        the image and the convolution has no padding, so their contribution is a per-label bias.

        Args:
            pixels: frames ``[*S, 3, 64, 64]`` shared by all labels.
            labels: ``[K, L]`` one-hot labels.

        Returns:
            Embeddings ``[K, *S, embed_dim]``.

        Raises:
            ValueError: the encoder takes no label, or ``labels`` is not ``[K, label_dim]``.
        """
        if not self.label_dim or labels.ndim != 2 or labels.shape[-1] != self.label_dim:
            raise ValueError(
                f"forward_shared needs labels [K, {self.label_dim}] and an encoder with label_dim > 0, "
                f"got labels {tuple(labels.shape)} for label_dim={self.label_dim}."
            )
        x = preprocess_pixels(pixels)
        batch = x.shape[:-3]
        h = self._first_conv(_channels_last(x.reshape(-1, *IMAGE_SHAPE)))  # [M, C, H', W']
        h = h.unsqueeze(0) + self._label_bias(labels.to(h.dtype))[:, None, :, None, None]  # [K, M, C, H', W']
        out = self.net[1:](_channels_last(h.flatten(0, 1)))
        return out.reshape(labels.shape[0], *batch, self.embed_dim)

    def _first_conv(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.net[0]
        return F.conv2d(x, conv.weight[:, : IMAGE_SHAPE[0]], conv.bias, stride=conv.stride)

    def _label_bias(self, label: torch.Tensor) -> torch.Tensor:
        """``[M, L] -> [M, C]``: the first convolution's response to constant label planes (no padding)."""
        return label.to(self.net[0].weight.dtype) @ self.net[0].weight[:, IMAGE_SHAPE[0]:].sum((-1, -2)).T


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``[M, C, H, W]`` in the channels-last layout (a no-op when it already is, or under ``torch.vmap``).

    ``torch.vmap`` (the ``ensemble`` teachers) cannot query memory formats; there the layout is left to
    the batching rule.
    """
    try:
        return x.contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # "NYI: querying is_contiguous inside of vmap ..."
        return x
