"""IQM and its stratified-bootstrap interval (rliable's method in numpy), against hand computations."""

import numpy as np
import pytest

from vid2act.agents.interval_estimates import iqm, stratified_bootstrap_ci


def test_iqm_of_known_samples_by_hand():
    # n = 8: sorted [-50, 1, 2, 3, 4, 5, 6, 100]; drop floor(8 / 4) = 2 at each end -> mean(2, 3, 4, 5) = 3.5
    assert iqm([100, 1, 5, 3, 6, 2, 4, -50]) == pytest.approx(3.5)
    # n = 5: drop 1 at each end: mean(2, 3, 4) = 3 (the outliers 0 and 1000 are ignored)
    assert iqm([1000, 2, 3, 0, 4]) == pytest.approx(3.0)
    # n <= 3: nothing is trimmed, the IQM is the mean
    assert iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    assert iqm([7.0]) == 7.0
    # along an axis: one IQM per row
    np.testing.assert_allclose(iqm(np.array([[1, 2, 3, 100], [0, 0, 4, 4]]), axis=-1), [2.5, 2.0])


def test_iqm_matches_scipy_trim_mean_when_available():
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(0).normal(size=(17,))
    assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25))


def test_bootstrap_interval_contains_the_point_estimate_and_is_reproducible():
    scores = np.random.default_rng(1).normal(300.0, 50.0, size=10)
    low, high = stratified_bootstrap_ci([scores])
    assert low < iqm(scores) < high and low > scores.min() and high < scores.max()
    assert stratified_bootstrap_ci([scores]) == (low, high)  # seeded
    wider = stratified_bootstrap_ci([scores], confidence=0.99)
    assert wider[0] <= low and wider[1] >= high
    mean_low, mean_high = stratified_bootstrap_ci([scores], np.mean)
    assert mean_low < scores.mean() < mean_high


def test_resampling_stays_within_each_stratum():
    # every resample keeps 2 scores of stratum a (all 0) and 2 of stratum b (all 10): the pooled IQM is
    # always mean(0, 10) = 5, so the interval is exactly [5, 5]; without stratification it would vary
    assert stratified_bootstrap_ci([[0.0, 0.0], [10.0, 10.0]]) == pytest.approx((5.0, 5.0))
    low, high = stratified_bootstrap_ci([[0.0, 0.0, 10.0, 10.0]])
    assert low < 5.0 < high
    assert stratified_bootstrap_ci([[4.0]]) == (4.0, 4.0)  # one seed: no spread


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="no scores"):
        iqm([])
    with pytest.raises(ValueError, match="stratum"):
        stratified_bootstrap_ci([[1.0], []])
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci([[1.0]], confidence=1.0)
    with pytest.raises(ValueError, match="reps"):
        stratified_bootstrap_ci([[1.0]], reps=0)


def test_ratio_interval_by_hand_and_its_edge_cases():
    from vid2act.agents.interval_estimates import bootstrap_ratio_ci

    # one score per group: every resample is that score, the interval is the ratio itself
    assert bootstrap_ratio_ci([6.0], [3.0]) == pytest.approx((2.0, 2.0))
    # numerator {1, 3} -> resampled means 1, 2, 3; denominator fixed at 1: the 95% interval spans [1, 3]
    low, high = bootstrap_ratio_ci([1.0, 3.0], [1.0], reps=4000)
    assert low == pytest.approx(1.0) and high == pytest.approx(3.0)
    # a clearly better group: the interval excludes 1; swapping the groups inverts it
    rng = np.random.default_rng(0)
    a, b = rng.normal(200.0, 10.0, 5), rng.normal(100.0, 10.0, 5)
    low, high = bootstrap_ratio_ci(a, b)
    assert 1.0 < low < a.mean() / b.mean() < high
    inv = bootstrap_ratio_ci(b, a)
    assert inv[1] < 1.0
    # a baseline of 0 in some resamples: the upper end is infinite, not NaN
    assert bootstrap_ratio_ci([1.0, 1.0], [0.0, 1.0])[1] == np.inf
    assert bootstrap_ratio_ci([1.0], [0.0]) == (np.inf, np.inf)
    assert all(np.isnan(bootstrap_ratio_ci([0.0], [0.0])))  # 0 / 0 only
    with pytest.raises(ValueError, match="at least one score"):
        bootstrap_ratio_ci([], [1.0])
