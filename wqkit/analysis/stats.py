"""Statistics over runs: summaries, per-CPU breakdown, outliers, comparisons.

Percentiles come from each run's sorted nanoseconds (sorted once), so a
summary of 10^7 samples costs one sort.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from wqkit.analysis.load import Run, measures
from wqkit.analysis.units import significant, unit_for

PERCENTILES = {"p50": 50, "p90": 90, "p99": 99, "p99.9": 99.9}
#: Monte Carlo bootstrap up to this many samples; above, its exact large-n limit.
BOOTSTRAP_MAX_N = 5000
BOOTSTRAP_RESAMPLES = 2000


def percentile(sorted_values: np.ndarray, q: float) -> float:
    """The q-th percentile (linear interpolation) of already sorted values."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def median_ci(sorted_values: np.ndarray, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap percentile confidence interval of the median.

    Up to BOOTSTRAP_MAX_N samples: BOOTSTRAP_RESAMPLES Monte Carlo resamples.
    Above: the bootstrap distribution of the median is known in closed form
    (the median of a resample is the order statistic of rank k with
    probability P(Bin(n, k/n) >= n/2)); for large n it is normal around rank
    n/2 with standard deviation sqrt(n)/2, so the interval is read off the
    sorted data at those ranks, without resampling 10^7 values.
    """
    n = len(sorted_values)
    alpha = (1 - confidence) / 2
    if n <= BOOTSTRAP_MAX_N:
        rng = np.random.default_rng(seed)
        medians = np.median(rng.choice(sorted_values, size=(BOOTSTRAP_RESAMPLES, n)), axis=1)
        return float(np.quantile(medians, alpha)), float(np.quantile(medians, 1 - alpha))
    z = _normal_quantile(1 - alpha)
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half))
    return float(sorted_values[lo]), float(sorted_values[hi])


def _normal_quantile(p: float) -> float:
    """Standard normal quantile, by bisection on erf (no SciPy needed)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def summary(run: Run) -> dict:
    """Summary statistics of one run, in ns (after the calibrated overhead).

    Samples ≤ 0 ns (clock skew between CPUs, or an overhead larger than the
    interval) are kept in every statistic and counted in ``nonpositive``
    (``nonpositive_cross_cpu``: those queued and run on different CPUs), so
    that a log-scale plot leaving them out never hides them.
    """
    values = run.sorted_ns
    row = {"run": run.name, "status": run.status, "experiment": run.experiment,
           "measure": measures(run.experiment), "accel": run.meta.get("accel"),
           "kernel": run.meta.get("kernel_release"), "patched": bool(run.meta.get("patched")),
           "count": len(values), "overhead_cycles": run.overhead_cycles,
           "overhead_subtracted": bool(run.overhead_cycles)}
    if not len(values):
        return row
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    ci_lo, ci_hi = median_ci(values)
    quantiles = {f"{name}_ns": percentile(values, q) for name, q in PERCENTILES.items()}
    nonpositive = run.ns <= 0
    cross_cpu = run.samples["cpu_queue"].to_numpy() != run.samples["cpu_exec"].to_numpy()
    return {
        **row,
        "min_ns": float(values[0]),
        **quantiles,
        "max_ns": float(values[-1]), "mean_ns": mean, "std_ns": std,
        "cv": std / mean if mean else float("nan"),
        "p50_ci_low_ns": ci_lo, "p50_ci_high_ns": ci_hi,
        # ns is a linear map of cycles, so percentiles map back exactly.
        "p50_cycles": quantiles["p50_ns"] * run.tsc_khz / 1e6,
        "migration_rate": migration_rate(run),
        "nonpositive": int(nonpositive.sum()),
        "nonpositive_cross_cpu": int((nonpositive & cross_cpu).sum()),
    }


def df_summary(runs: list[Run]) -> pd.DataFrame:
    """One row of summary statistics per run (durations in ns, full precision)."""
    return pd.DataFrame([summary(run) for run in runs]).set_index("run")


#: The columns of :func:`df_summary_table`, in order, with their headers.
TABLE_COLUMNS = {"status": "status", "experiment": "experiment", "accel": "accel", "count": "count",
                 "min_ns": "min", "p50_ns": "p50", "p50_ci_low_ns": "p50 CI low", "p50_ci_high_ns": "p50 CI high",
                 "p90_ns": "p90", "p99_ns": "p99", "p99.9_ns": "p99.9", "max_ns": "max", "mean_ns": "mean",
                 "std_ns": "std", "cv": "CV", "migration_rate": "migrated", "nonpositive": "≤ 0 ns",
                 "overhead_subtracted": "overhead subtracted"}


def readable(frame: pd.DataFrame, headers: dict[str, str] | None = None) -> pd.DataFrame:
    """A DataFrame for reading: ``*_ns`` columns in one unit that fits their medians,
    with 4 significant digits and the unit in the header; ``cv`` with 3 digits and
    ``migration_rate`` or ``share`` as percentages. ``headers`` renames (and selects) columns.
    """
    columns = [c for c in (headers or dict.fromkeys(frame.columns)) if c in frame.columns]
    durations = [c for c in columns if c.endswith("_ns") or c == "ns"]
    name, scale = unit_for(frame[c].median() for c in durations) if durations else ("ns", 1.0)
    table = pd.DataFrame(index=frame.index)
    for column in columns:
        header = (headers or {}).get(column) or ("value" if column == "ns" else column.removesuffix("_ns"))
        values = frame[column]
        if column in durations:
            table[f"{header} ({name})"] = [significant(v / scale) for v in values]
        elif column == "cv":
            table[header] = [significant(v, 3) for v in values]
        elif column in ("migration_rate", "share"):
            table[header] = [f"{v:.1%}" if v == v else "n/a" for v in values]
        else:
            table[header] = values
    return table


def df_summary_table(runs: list[Run]) -> pd.DataFrame:
    """:func:`df_summary` for reading (see :func:`readable`): ``p50 (µs)``, 4 significant digits."""
    return readable(df_summary(runs), TABLE_COLUMNS)


def migration_rate(run: Run) -> float:
    """Fraction of work items executed on another CPU than the one that queued them."""
    s = run.samples
    return float((s["cpu_queue"].to_numpy() != s["cpu_exec"].to_numpy()).mean()) if len(s) else 0.0


def df_per_cpu(run: Run) -> pd.DataFrame:
    """Count, share, median, p99 and mean per (queuing CPU, executing CPU) pair, in ns."""
    rows = [{"cpu_queue": q, "cpu_exec": e, "count": s["count"], "share": s["count"] / len(run.ns),
             "p50_ns": s["p50"], "p99_ns": s["p99"], "mean_ns": s["mean"]}
            for (q, e), s in run.cpu_pair_stats.items()]
    return pd.DataFrame(rows).set_index(["cpu_queue", "cpu_exec"])


def outlier_threshold(run: Run, k: float = 10.0) -> float:
    """median + k * MAD (MAD scaled by 1.4826 to estimate sigma), in ns."""
    return percentile(run.sorted_ns, 50) + k * 1.4826 * run.mad_ns


def df_outliers(run: Run, k: float = 10.0) -> pd.DataFrame:
    """Samples above median + k·MAD, with their position in the run (seq)."""
    threshold = outlier_threshold(run, k)
    mask = run.ns > threshold
    out = run.samples.loc[mask, ["seq", "cycles", "cpu_queue", "cpu_exec", "pid"]].copy()
    out["ns"] = run.ns[mask]
    out.attrs["threshold_ns"] = threshold
    return out.reset_index(drop=True)


def df_compare(runs: list[Run]) -> pd.DataFrame:
    """Median and p99 of several runs, with their ratio to the first run."""
    table = df_summary(runs)[["experiment", "accel", "kernel", "patched", "count", "p50_ns", "p99_ns"]].copy()
    base = table.iloc[0]
    table["p50_ratio"] = table["p50_ns"] / base["p50_ns"]
    table["p99_ratio"] = table["p99_ns"] / base["p99_ns"]
    return table
