"""Plots of runs. Every figure's title names the kernel, the accelerator (with
a warning for TCG) and the parameters; large runs are drawn from summaries
(log-binned counts, decimated envelopes), never point by point.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, LogLocator

from wqkit.analysis.load import Run, measures
from wqkit.analysis.stats import outlier_threshold
from wqkit.analysis.units import unit_for

#: At most this many points per curve; above, curves are decimated.
MAX_POINTS = 4000
TIMESERIES_BUCKETS = 1000


def _title(fig: Figure, what: str, runs: list[Run]) -> None:
    measured = " / ".join(sorted({measures(r.experiment) or r.experiment for r in runs}))
    labels = runs[0].label if len(runs) == 1 else f"{len(runs)} runs"
    origins = "; ".join(sorted({r.origin for r in runs}))
    fig.suptitle(f"{what}: {measured} — {labels}\n{origins}", fontsize=8)
    # Fixed margins: a layout engine would cost a second drawing pass per figure.
    fig.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.15)


class PlainLogFormatter(LogFormatter):
    """Log-axis tick labels as plain numbers (0.5, 20, 1,000), powers of ten only far out.

    Matplotlib's default labels are mathtext, whose parsing costs about
    0.15 s for a run's five plots: a quarter of the whole analysis of 10^6
    samples. Which ticks get a label is left to LogFormatter.
    """

    _SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        if 1e-3 <= x < 1e6:
            return f"{x:,.3g}" if x < 1000 else f"{x:,.0f}"
        exponent = int(np.floor(np.log10(x) + 1e-9))
        mantissa = x / 10.0 ** exponent
        power = "10" + str(exponent).translate(self._SUPERSCRIPTS)
        return power if abs(mantissa - 1) < 1e-9 else f"{mantissa:.3g}×{power}"


def log_scale(axis: Axis) -> None:
    """Put ``axis`` on a base-10 log scale with plain-text tick labels."""
    getattr(axis.axes, f"set_{axis.axis_name}scale")("log")
    axis.set_minor_locator(LogLocator(subs=(2, 5)))   # 2 minor ticks a decade, not 8: each costs a draw
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter())


def _unit(runs: list[Run]) -> tuple[str, float]:
    """The unit that fits the runs' medians (see wqkit.analysis.units)."""
    return unit_for(float(r.sorted_ns[len(r.sorted_ns) // 2]) for r in runs if len(r.sorted_ns))


def _xlabel(runs: list[Run], unit: str) -> str:
    overhead = " (timestamp overhead subtracted)" if any(r.overhead_cycles for r in runs) else ""
    hidden = sum(int((r.ns <= 0).sum()) for r in runs)
    left_out = f"; {hidden} samples ≤ 0 not on the log axis" if hidden else ""
    return f"{unit}{overhead}{left_out}"


def _positive(values: np.ndarray) -> np.ndarray:
    return values[values > 0]


def plot_histogram(runs: list[Run], bins: int = 120) -> Figure:
    """Histogram of each run on log-spaced bins (log x axis)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    unit, scale = _unit(runs)
    for run in runs:
        values = _positive(run.sorted_ns) / scale
        edges = np.geomspace(values[0], values[-1] * 1.0001, bins + 1)
        counts = np.diff(np.searchsorted(values, edges))
        ax.stairs(counts, edges, label=run.label, fill=len(runs) == 1, alpha=0.7)
    log_scale(ax.xaxis)
    ax.set_xlabel(_xlabel(runs, unit))
    ax.set_ylabel("work items")
    ax.legend(fontsize=7)
    _title(fig, "Distribution", runs)
    return fig


def _ecdf(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(values, cumulative fraction), decimated to about MAX_POINTS points but keeping the tail."""
    values = run.sorted_ns
    n = len(values)
    if n <= MAX_POINTS:
        idx = np.arange(n)
    else:
        body = np.linspace(0, n - 1, MAX_POINTS // 2).astype(np.int64)
        tail = n - 1 - np.unique(np.geomspace(1, n, MAX_POINTS // 2).astype(np.int64) - 1)
        idx = np.unique(np.concatenate([body, tail]))
    return values[idx], (idx + 1) / n


def _plot_ecdf(runs: list[Run], tail: bool) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    unit, scale = _unit(runs)
    for run in runs:
        x, y = _ecdf(run)
        x = x / scale
        if tail:
            keep = y < 1
            x, y = x[keep], 1 - y[keep]
        ax.step(x, y, where="post", label=run.label)
    log_scale(ax.xaxis)
    if tail:
        log_scale(ax.yaxis)
    ax.set_xlabel(_xlabel(runs, unit))
    ax.set_ylabel("fraction of work items > x" if tail else "fraction of work items ≤ x")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _title(fig, "Tail (CCDF)" if tail else "CDF", runs)
    return fig


def plot_cdf(runs: list[Run]) -> Figure:
    """Empirical CDF of each run (log x axis): compare runs at a glance."""
    return _plot_ecdf(runs, tail=False)


def plot_ccdf(runs: list[Run]) -> Figure:
    """Tail: 1 - CDF on log-log axes, where p99.9 and beyond become visible."""
    return _plot_ecdf(runs, tail=True)


def plot_timeseries(run: Run, k: float = 10.0) -> Figure:
    """Samples in run order: warm-up, drift and periodic spikes.

    Above TIMESERIES_BUCKETS samples, each bucket of consecutive items is
    drawn as its median with a min-max band; outliers (median + k·MAD) are
    marked individually when few enough to see.
    """
    fig, ax = plt.subplots(figsize=(9, 4.5))
    unit, scale = _unit([run])
    values = run.ns / scale
    n = len(values)
    if n <= TIMESERIES_BUCKETS * 2:
        ax.plot(np.arange(n), values, ".", markersize=2, label="sample")
    else:
        per = n // TIMESERIES_BUCKETS
        used = values[: per * TIMESERIES_BUCKETS].reshape(TIMESERIES_BUCKETS, per)
        x = (np.arange(TIMESERIES_BUCKETS) + 0.5) * per
        ax.fill_between(x, used.min(axis=1), used.max(axis=1), alpha=0.3, step="mid", label="min–max per bucket")
        ax.plot(x, np.median(used, axis=1), linewidth=1, label=f"median per {per} items")
    threshold = outlier_threshold(run, k) / scale
    outliers = np.flatnonzero(values > threshold)
    if 0 < len(outliers) <= MAX_POINTS:
        ax.plot(outliers, values[outliers], "x", color="red", markersize=4,
                label=f"{len(outliers)} outliers (> median + {k:g}·MAD)")
    ax.axhline(threshold, color="red", linewidth=0.5, linestyle="--")
    log_scale(ax.yaxis)
    ax.set_xlabel("work item (seq)")
    ax.set_ylabel(_xlabel([run], unit))
    ax.legend(fontsize=7)
    _title(fig, "Samples in run order", [run])
    return fig


def plot_per_cpu(run: Run) -> Figure:
    """Box plot per (queuing CPU → executing CPU) pair, from computed quartiles."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    unit, scale = _unit([run])
    stats = [{"label": f"{q}→{e}\n(n={s['count']})", "med": s["p50"] / scale, "q1": s["p25"] / scale,
              "q3": s["p75"] / scale, "whislo": s["p1"] / scale, "whishi": s["p99"] / scale, "fliers": []}
             for (q, e), s in run.cpu_pair_stats.items()]
    ax.bxp(stats, showfliers=False)
    log_scale(ax.yaxis)
    ax.set_xlabel("queuing CPU → executing CPU (whiskers: p1 and p99)")
    ax.set_ylabel(_xlabel([run], unit))
    _title(fig, "Per-CPU", [run])
    return fig


def write_plots(runs: list[Run], out: Path) -> list[Path]:
    """Write every plot of every run (and the comparisons when several) as PNG."""
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Figure] = {}
    runs = [run for run in runs if len(run.samples)]
    for run in runs:
        figures[f"{run.name}-histogram.png"] = plot_histogram([run])
        figures[f"{run.name}-timeseries.png"] = plot_timeseries(run)
        figures[f"{run.name}-per-cpu.png"] = plot_per_cpu(run)
    figures["cdf.png"] = plot_cdf(runs)
    figures["ccdf.png"] = plot_ccdf(runs)
    paths = []
    for name, fig in figures.items():
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
