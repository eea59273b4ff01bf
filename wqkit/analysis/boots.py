"""Statistics with the boot as the unit: what a boot fixes is not an effect of what it ran.

Runs of one boot share where the kworkers landed, the timer and cache state
and the host's load at that time: between boots of one kernel, a run's p50
can sit in two regimes 2.5× apart while runs of one boot agree. So a
level's figure is built from its boots, not its runs:

- each run is reduced to its own statistic (p50, a makespan...), taken on
  the log scale (effects are ratios);
- a boot's value is the mean of its runs' logs; a level's value is the mean
  over its boots (a geometric mean), with a Student t interval over boots;
- two levels are compared by the ratio of their geometric means, with
  Welch's t interval on the boots' logs, or, when every boot ran both
  levels, a paired t interval on each boot's difference (the boot's own
  state cancels out);
- variance components (between boots, between runs of one boot) are the
  one-way ANOVA estimates on the logs.

These t intervals keep their 95 % at 3 to 16 boots a level for lognormal
statistics (σ 0.1 to 1.2) and for a two-regime mixture: tests/test_boots.py
shows it over 20,000 simulated draws per case. A level with fewer than two
boots has no interval (NaN, and the reason), never a zero-width one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
#: A gap between boots' values that is this many times wider than the spread inside the
#: groups it separates, and at least REGIME_MIN_RATIO, splits them into two regimes.
REGIME_GAP_SPREADS = 4.0
REGIME_MIN_RATIO = 1.5


@dataclass(frozen=True)
class LogInterval:
    """An estimate on the log scale with its interval and a two-sided p-value against 0
    (NaN where fewer than two boots make it), batched like the inputs."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray


def _t_interval(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, confidence: float) -> LogInterval:
    """estimate ± t(df) · se; a zero standard error (every boot equal) gives the point itself,
    with p = 1 if the estimate is 0 and 0 otherwise."""
    estimate, se, df = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (estimate, se, df)))
    with np.errstate(divide="ignore", invalid="ignore"):
        half = scipy_stats.t.ppf(0.5 + confidence / 2, df) * se
        p = 2 * scipy_stats.t.sf(np.abs(estimate / se), df)
    flat = se == 0
    half = np.where(flat, 0.0, half)
    p = np.where(flat, np.where(estimate == 0, 1.0, 0.0), p)
    return LogInterval(estimate, estimate - half, estimate + half, p)


def mean_interval(logs: np.ndarray, confidence: float = CONFIDENCE) -> LogInterval:
    """The mean of boots' logs (last axis) with its Student t interval; NaN below two boots."""
    logs = np.asarray(logs, dtype=float)
    n = logs.shape[-1]
    mean = logs.mean(axis=-1) if n else np.full(logs.shape[:-1], np.nan)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return LogInterval(mean, nan, nan, nan)
    se = logs.std(axis=-1, ddof=1) / np.sqrt(n)
    return _t_interval(mean, se, np.full_like(mean, n - 1), confidence)


def welch_interval(logs_a: np.ndarray, logs_b: np.ndarray, confidence: float = CONFIDENCE) -> LogInterval:
    """mean(a) − mean(b) of two groups of boots' logs (last axis), with Welch's t interval
    (Welch–Satterthwaite degrees of freedom: the groups' spreads may differ, as two
    kernels' do); NaN when either group has fewer than two boots."""
    a, b = np.asarray(logs_a, dtype=float), np.asarray(logs_b, dtype=float)
    na, nb = a.shape[-1], b.shape[-1]
    if na < 2 or nb < 2:
        nan = np.full(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]), np.nan)
        estimate = a.mean(axis=-1) - b.mean(axis=-1) if na and nb else nan
        return LogInterval(estimate, nan, nan, nan)
    va, vb = a.var(axis=-1, ddof=1) / na, b.var(axis=-1, ddof=1) / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return _t_interval(a.mean(axis=-1) - b.mean(axis=-1), np.sqrt(va + vb), df, confidence)


def paired_interval(differences: np.ndarray, confidence: float = CONFIDENCE) -> LogInterval:
    """The mean of each boot's log difference between two levels it both ran (last axis),
    with a Student t interval: :func:`mean_interval` of the differences."""
    return mean_interval(differences, confidence)


def variance_components(logs_by_boot: list[np.ndarray]) -> tuple[float, float]:
    """(between boots, between runs of one boot): the one-way ANOVA (method of moments)
    estimates of the two variances of run logs, the first clipped at 0. NaN where the
    runs cannot tell (one boot; no boot with two runs)."""
    groups = [np.asarray(g, dtype=float) for g in logs_by_boot if len(g)]
    sizes = np.array([len(g) for g in groups])
    total, k = sizes.sum() if len(groups) else 0, len(groups)
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (total - k) if total > k else np.nan
    if k < 2:
        return np.nan, float(within)
    grand = np.concatenate(groups).mean()
    between_ms = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (k - 1)
    n0 = (total - (sizes**2).sum() / total) / (k - 1)      # runs per boot, for unequal boots
    if np.isnan(within):        # one run per boot: the boots' spread is all there is
        return float(between_ms), np.nan
    return float(max(0.0, (between_ms - within) / n0)), float(within)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's adjustment (family-wise error) of p-values; NaNs stay NaN and are not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted


def rank_p_value(logs_a: np.ndarray, logs_b: np.ndarray, paired: bool) -> float:
    """Two-sided p of a rank test on boot-level values: Wilcoxon's signed-rank test on the
    boots' differences when paired, else Mann-Whitney U. NaN below two boots a side."""
    a, b = np.asarray(logs_a, dtype=float), np.asarray(logs_b, dtype=float)
    if min(len(a), len(b)) < 2:
        return np.nan
    if paired:
        if np.all(a == b):
            return 1.0
        return float(scipy_stats.wilcoxon(a - b).pvalue)
    return float(scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def regimes(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Boots' logs that fall into two regimes: split at the widest gap between sorted values,
    when that gap is REGIME_GAP_SPREADS times the spread inside each side (at least 2 % each)
    and a ratio of REGIME_MIN_RATIO or more, each side holding two boots or more. Returns
    the (low, high) boolean masks over ``logs``, or None."""
    logs = np.asarray(logs, dtype=float)
    if len(logs) < 4:
        return None
    order = np.sort(logs)
    gaps = np.diff(order)
    cut = int(np.argmax(gaps[1:-1])) + 1 if len(gaps) > 2 else None   # at least two boots a side
    if cut is None:
        return None
    low, high = order[:cut + 1], order[cut + 1:]
    spread = max(low.std(ddof=1), high.std(ddof=1), np.log(1.02))
    if gaps[cut] < max(REGIME_GAP_SPREADS * spread, np.log(REGIME_MIN_RATIO)):
        return None
    threshold = (order[cut] + order[cut + 1]) / 2
    return logs < threshold, logs > threshold
