"""Interquartile mean (IQM) and its stratified-bootstrap confidence interval, as rliable reports them.

Agarwal et al., *Deep RL at the Edge of the Statistical Precipice* (NeurIPS 2021), recommend the IQM of
the runs' scores (the mean of the middle 50 %, robust to an outlier seed yet using more runs than the
median) with a 95 % percentile interval from a stratified bootstrap. Their ``rliable`` package pulls in
``arch``, ``pandas`` and ``seaborn``; this is the same computation in plain numpy:

* ``iqm(x)``: sort the ``n`` scores, drop ``floor(n / 4)`` from each end, average the rest
  (``scipy.stats.trim_mean(x, 0.25)``, what ``rliable.metrics.aggregate_iqm`` computes). For ``n <= 3``
  nothing is dropped: the IQM is the mean.
* ``stratified_bootstrap_ci``: ``reps`` times, resample every stratum's scores (a task's seeds) with
  replacement, keeping each stratum's size, pool them and take the statistic; the interval is the
  ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the ``reps`` values
  (rliable's ``StratifiedBootstrap`` with its default percentile method). With one stratum it is the
  ordinary bootstrap over seeds. A seeded generator makes reports reproducible.
* ``bootstrap_ratio_ci``: the interval of ``mean(a) / mean(b)`` for two independent groups of runs (an
  agent's seeds and a baseline's), each resampled with replacement to its own size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["iqm", "stratified_bootstrap_ci", "bootstrap_ratio_ci"]


def iqm(scores: np.ndarray | Sequence[float], axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the scores left after dropping ``floor(n / 4)`` at each end.

    Args:
        scores: the scores; with ``axis=None`` all of them (flattened), else along ``axis``.
        axis: the axis to reduce (``None``: all).

    Returns:
        A float (``axis=None``) or the array reduced along ``axis``.

    Raises:
        ValueError: no scores.
    """
    x = np.asarray(scores, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if n == 0:
        raise ValueError("iqm: no scores")
    cut = n // 4
    out = np.sort(x, axis=-1)[..., cut:n - cut].mean(-1)
    return float(out) if out.ndim == 0 else out


def stratified_bootstrap_ci(
    strata: Sequence[np.ndarray | Sequence[float]],
    statistic: Callable[..., np.ndarray] = iqm,
    *,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over the pooled scores, resampling within each stratum.

    Args:
        strata: one array of scores per stratum (e.g. per env: its seeds' final scores); each is
            resampled with replacement to its own size.
        statistic: ``f(samples [reps, n], axis=-1) -> [reps]`` of the pooled resampled scores
            (default :func:`iqm`; ``np.mean`` works too).
        confidence: the interval's coverage in ``(0, 1)``.
        reps: bootstrap repetitions.
        seed: seed of the generator (the same inputs give the same interval).

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: no stratum, an empty stratum, ``confidence`` outside ``(0, 1)`` or ``reps < 1``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"stratified_bootstrap_ci: confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"stratified_bootstrap_ci: reps must be >= 1, got {reps}")
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1) for s in strata]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("stratified_bootstrap_ci: every stratum needs at least one score")
    rng = np.random.default_rng(seed)
    samples = np.concatenate([a[rng.integers(0, a.size, size=(reps, a.size))] for a in arrays], axis=1)
    values = np.asarray(statistic(samples, axis=-1), dtype=np.float64)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ratio_ci(
    numerator: np.ndarray | Sequence[float],
    denominator: np.ndarray | Sequence[float],
    *,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``mean(numerator) / mean(denominator)`` over independent resamples of both.

    Resamples whose denominator mean is 0 give an infinite ratio; they stay in the percentiles (an interval
    reaching ``inf`` says the baseline's score can be 0); resamples of ``0 / 0`` are dropped, and ``(nan, nan)``
    is returned when every one is.

    Args:
        numerator / denominator: the two groups' scores (e.g. each seed's AUC), resampled independently.
        confidence, reps, seed: as :func:`stratified_bootstrap_ci`.

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: an empty group, ``confidence`` outside ``(0, 1)`` or ``reps < 1``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_ratio_ci: confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"bootstrap_ratio_ci: reps must be >= 1, got {reps}")
    a = np.asarray(numerator, dtype=np.float64).reshape(-1)
    b = np.asarray(denominator, dtype=np.float64).reshape(-1)
    if a.size == 0 or b.size == 0:
        raise ValueError("bootstrap_ratio_ci: both groups need at least one score")
    rng = np.random.default_rng(seed)
    num = a[rng.integers(0, a.size, size=(reps, a.size))].mean(-1)
    den = b[rng.integers(0, b.size, size=(reps, b.size))].mean(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = num / den
    ratios = ratios[~np.isnan(ratios)]
    if ratios.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    # linear interpolation between two infinite ratios is NaN: take the nearest order statistic then
    method = "nearest" if np.isinf(ratios).any() else "linear"
    low, high = np.quantile(ratios, [tail, 1.0 - tail], method=method)
    return float(low), float(high)
