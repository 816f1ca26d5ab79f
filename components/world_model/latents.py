"""Stochastic-state spaces of the RSSM: DreamerV2 categorical latents and a Gaussian option.

A latent space knows how the RSSM's distribution parameters are named in a TensorDict
(``prior_<name>`` / ``posterior_<name>``), how to build the ``torch.distributions`` object from
them (used by :class:`~vid2act.components.losses.WorldModelLoss` for the KL and entropies) and
how to draw a reparameterised sample or the mode. It holds no parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import distributions as D
from torch.nn import functional as F

__all__ = ["CategoricalLatent", "GaussianLatent", "LatentSpace"]


class CategoricalLatent:
    """``C`` independent categoricals of ``K`` classes each (DreamerV2: ``C = K = 32``).

    The state is the concatenation of the ``C`` one-hot vectors, ``state_dim = C * K``. Samples
    use straight-through gradients (forward: one-hot; backward: through the probabilities),
    optionally mixed with ``unimix`` of the uniform distribution (DreamerV3; 0 in DreamerV2).
    Parameter: ``logits [*, C, K]`` (raw logits, before the unimix mixture).

    Args:
        num_categoricals: ``C``.
        num_classes: ``K``.
        unimix: uniform mixture fraction in ``[0, 1)``.

    Raises:
        ValueError: on non-positive sizes or ``unimix`` outside ``[0, 1)``.

    Examples:
        >>> import torch
        >>> latent = CategoricalLatent(4, 3)
        >>> dist = latent.distribution({"logits": torch.zeros(2, 4, 3)})
        >>> round(dist.entropy()[0].item(), 4) == round(4 * torch.log(torch.tensor(3.0)).item(), 4)
        True
    """

    kind = "categorical"
    param_names = ("logits",)

    def __init__(self, num_categoricals: int = 32, num_classes: int = 32, unimix: float = 0.0) -> None:
        if num_categoricals < 1 or num_classes < 2:
            raise ValueError(
                f"need num_categoricals >= 1 and num_classes >= 2, got {num_categoricals} and {num_classes}."
            )
        if not 0.0 <= unimix < 1.0:
            raise ValueError(f"unimix must be in [0, 1), got {unimix}.")
        self.num_categoricals = num_categoricals
        self.num_classes = num_classes
        self.unimix = unimix
        self.state_dim = num_categoricals * num_classes

    def as_params(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Name the raw output of a categorical prior/posterior network: ``{"logits": raw}``."""
        return {"logits": raw}

    def distribution(self, params: Mapping[str, torch.Tensor]) -> D.Distribution:
        """``Independent(OneHotCategoricalStraightThrough, 1)``: batch ``[*]``, event ``[C, K]``.

        KL divergences and entropies of it are summed over the ``C`` categoricals (nats).
        """
        logits = params["logits"]
        if self.unimix:
            probs = (1.0 - self.unimix) * torch.softmax(logits, -1) + self.unimix / self.num_classes
            base = D.OneHotCategoricalStraightThrough(probs=probs, validate_args=False)
        else:
            base = D.OneHotCategoricalStraightThrough(logits=logits, validate_args=False)
        return D.Independent(base, 1, validate_args=False)

    def sample(self, params: Mapping[str, torch.Tensor], sample: bool = True) -> torch.Tensor:
        """Straight-through one-hot sample (or the mode when ``sample=False``), ``[*, C * K]``."""
        dist = self.distribution(params)
        if sample:
            one_hot = dist.rsample()
        else:
            probs = dist.base_dist.probs
            hard = F.one_hot(probs.argmax(-1), self.num_classes).to(probs.dtype)
            one_hot = probs + (hard - probs).detach()
        return one_hot.flatten(-2)


class GaussianLatent:
    """Diagonal Gaussian state of ``S`` dimensions (DreamerV1 / dreamer-torch ``discrete=False``).

    Parameters: ``mean [*, S]`` and ``std [*, S]`` with ``std = softplus(raw) + min_std`` (the
    networks apply it). Samples are reparameterised.

    Args:
        stoch_dim: ``S``.

    Raises:
        ValueError: if ``stoch_dim < 1``.

    Examples:
        >>> import torch
        >>> latent = GaussianLatent(3)
        >>> latent.sample({"mean": torch.zeros(2, 3), "std": torch.ones(2, 3)}, sample=False).sum().item()
        0.0
    """

    kind = "gaussian"
    param_names = ("mean", "std")

    def __init__(self, stoch_dim: int = 32) -> None:
        if stoch_dim < 1:
            raise ValueError(f"stoch_dim must be >= 1, got {stoch_dim}.")
        self.stoch_dim = stoch_dim
        self.state_dim = stoch_dim

    def as_params(self, raw: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Name the raw output ``(mean, std)`` of a Gaussian prior/posterior network."""
        mean, std = raw
        return {"mean": mean, "std": std}

    def distribution(self, params: Mapping[str, torch.Tensor]) -> D.Distribution:
        """``Independent(Normal(mean, std), 1)``: batch ``[*]``, event ``[S]``."""
        return D.Independent(D.Normal(params["mean"], params["std"], validate_args=False), 1, validate_args=False)

    def sample(self, params: Mapping[str, torch.Tensor], sample: bool = True) -> torch.Tensor:
        """Reparameterised sample (or the mean when ``sample=False``), ``[*, S]``."""
        if not sample:
            return params["mean"]
        return params["mean"] + params["std"] * torch.randn_like(params["mean"])


LatentSpace = CategoricalLatent | GaussianLatent
