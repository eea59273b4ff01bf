"""A study's answer with its uncertainty: per factor level, percentiles with bootstrap
confidence intervals over runs, ratios to a baseline level, and a rank test.

The resampling unit is the run (a repetition of a point), not the sample:
samples of one run share its boot, its host's state and its drift, so
treating 10^5 of them as independent would make every interval far too
narrow. Each run is first reduced to its own p50/p90/p99; a level's figure
is the mean of those over its runs, with a BCa bootstrap interval
(scipy.stats.bootstrap); its ratio to the baseline level resamples both
groups' runs independently; Mann-Whitney U compares the two groups' runs.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as scipy_stats

from wqkit.analysis.kserver import df_makespan
from wqkit.analysis.load import Run, TraceRun, load_run
from wqkit.analysis.stats import PERCENTILES, percentile
from wqkit.analysis.units import format_duration
from wqkit.analysis.workers import durations_ns, worker_kind
from wqkit.errors import WqkitError
from wqkit.experiments.spec import experiment
from wqkit.study.index import STUDY_META, levels, read_index

#: The per-run statistics a study compares.
RUN_STATS = ("p50", "p90", "p99")
CONFIDENCE = 0.95
RESAMPLES = 4000


def run_durations_ns(run: Run | TraceRun) -> np.ndarray:
    """What a study compares of one run, sorted, in ns: an experiment's samples; a worker
    trace's create_worker() (or told-to-die → exit) durations; a latency trace's queue →
    start of execution; a trace's first engine only (engines traced together bias each other)."""
    if isinstance(run, Run):
        return run.sorted_ns
    events = run.events[run.events["engine"] == run.meta["engines"][0]]
    if run.experiment == "trace_latency":
        values = (events["start_ns"] - events["queue_ns"]).to_numpy(dtype=float)
    else:
        values = durations_ns(events, worker_kind(run.meta)).to_numpy(dtype=float)
    return np.sort(values)


def _makespan_ns(run: Run | TraceRun) -> float:
    """A task graph run's mean makespan over its repetitions (NaN for other runs)."""
    if not isinstance(run, Run) or not experiment(run.experiment).graph:
        return float("nan")
    return float(df_makespan(run)["makespan_ns"].mean())


def df_study(directory: str | Path) -> pd.DataFrame:
    """One row per ok run of a study: its factor levels, host, order, its p50/p90/p99 (ns) of
    :func:`run_durations_ns` and, for a task graph, its mean makespan (ns)."""
    directory = Path(directory)
    index = read_index(directory)
    ok = index[index["status"] == "ok"]
    rows = []
    for key, row in ok.iterrows():
        run = load_run(directory / row["run_dir"])
        values = run_durations_ns(run)
        rows.append({"key": key, "samples": len(values), "accel": run.meta.get("accel"),
                     **{name: percentile(values, PERCENTILES[name]) for name in RUN_STATS},
                     "makespan": _makespan_ns(run)})
    frame = pd.DataFrame(rows, columns=["key", "samples", "accel", *RUN_STATS, "makespan"]).set_index("key")
    table = levels(ok).join(ok[["experiment", "repetition", "order", "host", "run_dir"]]).join(frame)
    table.attrs.update(failed=int((index["status"] == "failed").sum()), pending=int((index["status"] == "pending").sum()),
                       factors=json.loads((directory / STUDY_META).read_text())["factors"])
    return table.reset_index(drop=True)


def _key(level: object) -> str:
    return json.dumps(level)


def _interval(samples: tuple[np.ndarray, ...], statistic, seed: int) -> tuple[float, float]:
    if min(len(s) for s in samples) < 2 or all(np.ptp(s) == 0 for s in samples):
        value = statistic(*samples, axis=-1)
        return float(value), float(value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # BCa warns on degenerate resamples; it falls back then
        result = scipy_stats.bootstrap(samples, statistic, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                                       method="BCa", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if not np.isfinite(low) or not np.isfinite(high):
        result = scipy_stats.bootstrap(samples, statistic, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                                       method="percentile", random_state=np.random.default_rng(seed))
        low, high = result.confidence_interval
    return float(low), float(high)


def _mean(values, axis=-1):
    return np.mean(values, axis=axis)


def _ratio(a, b, axis=-1):
    return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def df_effects(study: pd.DataFrame, factor: str, baseline: object | None = None,
               run_stats: tuple[str, ...] = RUN_STATS, seed: int = 0) -> pd.DataFrame:
    """Per level of ``factor`` (runs of the other factors pooled) and per statistic: runs, the
    mean of the runs' statistic with its interval, the ratio to ``baseline`` (default: the
    first level) with its interval, and Mann-Whitney U's two-sided p-value against it."""
    if factor not in study.columns:
        raise WqkitError(f"no factor {factor!r} in this study (its factors: {', '.join(factors(study))})")
    present = set(map(_key, study[factor].dropna()))
    order = [level for level in study.attrs.get("factors", {}).get(factor, []) if _key(level) in present] \
        or list(dict.fromkeys(study[factor].dropna().tolist()))       # the study file's order
    baseline = order[0] if baseline is None else baseline
    if baseline not in order:
        raise WqkitError(f"{factor}: no level {baseline!r} (levels: {order})")
    rows = []
    for stat in run_stats:
        measured = study[study[stat].notna()]
        base = measured.loc[measured[factor] == baseline, stat].to_numpy(dtype=float)
        for level in order:
            values = measured.loc[measured[factor] == level, stat].to_numpy(dtype=float)
            low, high = _interval((values,), _mean, seed)
            row = {"factor": factor, "level": level, "stat": stat, "runs": len(values),
                   "value_ns": float(values.mean()), "ci_low_ns": low, "ci_high_ns": high}
            if level == baseline:
                row.update(ratio=1.0, ratio_low=1.0, ratio_high=1.0, p_value=np.nan)
            else:
                r_low, r_high = _interval((values, base), _ratio, seed)
                p_value = scipy_stats.mannwhitneyu(values, base, alternative="two-sided").pvalue \
                    if len(values) and len(base) else np.nan
                row.update(ratio=float(values.mean() / base.mean()), ratio_low=r_low, ratio_high=r_high,
                           p_value=float(p_value))
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs.update(baseline=baseline, confidence=CONFIDENCE)
    return frame


def study_effects(study: pd.DataFrame, factor_names: list[str] | None = None, baseline: object | None = None
                  ) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """Per experiment of a df_study table and per factor (default: each varied within that
    experiment): the experiment, the factor, its df_effects (the makespan among the statistics
    for a task graph) and the experiment's runs. Experiments measure different things, so
    their runs are never pooled."""
    for name, runs in study.groupby("experiment", sort=False):
        runs = runs.copy()
        runs.attrs.update(study.attrs)
        run_stats = RUN_STATS + (("makespan",) if runs["makespan"].notna().any() else ())
        for factor in factor_names or factors(runs):
            yield str(name), factor, df_effects(runs, factor, baseline, run_stats=run_stats), runs


def factors(study: pd.DataFrame) -> list[str]:
    """The factors of a df_study table that have more than one level."""
    fixed = {"experiment", "repetition", "order", "host", "run_dir", "samples", "accel", "makespan", *RUN_STATS}
    return [c for c in study.columns if c not in fixed and study[c].nunique() > 1]


def readable_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """df_effects for reading: durations with units, intervals as ``[low, high]``."""
    out = pd.DataFrame({"level": effects["level"].astype(str), "stat": effects["stat"], "runs": effects["runs"]})
    out["value"] = effects["value_ns"].map(format_duration)
    out[f"{CONFIDENCE:.0%} CI"] = [f"[{format_duration(lo)}, {format_duration(hi)}]"
                                   for lo, hi in zip(effects["ci_low_ns"], effects["ci_high_ns"])]
    out["ratio"] = [f"{r:.3f} [{lo:.3f}, {hi:.3f}]" for r, lo, hi in
                    zip(effects["ratio"], effects["ratio_low"], effects["ratio_high"])]
    out["p (Mann-Whitney)"] = effects["p_value"].map(lambda p: "" if np.isnan(p) else f"{p:.3g}")
    return out


def plot_order(study: pd.DataFrame, factor: str, stat: str = "p50") -> Figure:
    """Each run's statistic in the order the runs were made, coloured by ``factor``'s level:
    drift of the host shows as a trend shared by every level, an effect as a gap between them."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for i, (level, part) in enumerate(study.groupby(study[factor].map(str), sort=False)):
        ax.plot(part["order"], part[stat] / 1e3, "o", color=f"C{i}", label=f"{factor}={level}")
    ax.set_xlabel("run order (randomised within blocks)")
    ax.set_ylabel(f"{stat} (µs)")
    ax.legend(fontsize="small")
    ax.set_title(f"{stat} of each run in run order")
    fig.tight_layout()
    return fig


def plot_effects(effects: pd.DataFrame, title: str = "", tcg: bool = False) -> Figure:
    """Each statistic per level with its interval (top), and its ratio to the baseline (bottom)."""
    stats_ = list(dict.fromkeys(effects["stat"]))
    fig, axes = plt.subplots(2, len(stats_), figsize=(3.6 * len(stats_) + 1, 6), squeeze=False)
    for col, stat in enumerate(stats_):
        part = effects[effects["stat"] == stat]
        x = np.arange(len(part))
        labels = [f"{level}\n{runs} runs" for level, runs in zip(part["level"].astype(str), part["runs"])]
        values_us = part["value_ns"].to_numpy() / 1e3
        err = [values_us - part["ci_low_ns"].to_numpy() / 1e3, part["ci_high_ns"].to_numpy() / 1e3 - values_us]
        axes[0, col].errorbar(x, values_us, yerr=err, fmt="o", capsize=4)
        axes[0, col].set_title(f"{stat} (mean over runs)")
        axes[0, col].set_ylabel("µs")
        ratio = part["ratio"].to_numpy()
        axes[1, col].errorbar(x, ratio, yerr=[ratio - part["ratio_low"].to_numpy(),
                                              part["ratio_high"].to_numpy() - ratio], fmt="o", capsize=4, color="C1")
        axes[1, col].axhline(1.0, color="grey", lw=0.8, ls="--")
        axes[1, col].set_ylabel(f"ratio to {effects.attrs.get('baseline')}")
        for ax in axes[:, col]:
            ax.set_xticks(x, labels, rotation=20)
            ax.set_xlim(-0.5, len(part) - 0.5)
    factor = effects["factor"].iloc[0] if len(effects) else ""
    fig.suptitle((title or f"{factor}: {CONFIDENCE:.0%} bootstrap intervals over runs")
                 + (" — TCG: emulation timings" if tcg else ""))
    fig.tight_layout()
    return fig
