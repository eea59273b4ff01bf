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
from itertools import product
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
from wqkit.study.spec import level_text

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
               run_stats: tuple[str, ...] = RUN_STATS, seed: int = 0,
               within: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Per level of ``factor`` and per statistic: runs, the mean of the runs' statistic with its
    interval, the ratio to ``baseline`` (default: the study file's first level) with its
    interval, and Mann-Whitney U's two-sided p-value against it.

    ``within`` names factors held fixed: the comparison is made separately in each
    combination of their levels (the ``stratum`` column), so that a factor with a large
    effect (a burst against one item at a time) does not swamp another's. Without it, runs
    of every other level are pooled (stratum ``all``)."""
    if factor not in study.columns:
        raise WqkitError(f"no factor {factor!r} in this study (its factors: {', '.join(factors(study))})")
    for name in within:
        if name not in study.columns or name == factor:
            raise WqkitError(f"cannot hold {name!r} fixed when comparing {factor} "
                             f"(factors: {', '.join(factors(study))})")
    order = _levels(study, factor)
    baseline = order[0] if baseline is None else baseline
    if baseline not in order:
        raise WqkitError(f"{factor}: no level {baseline!r} (levels: {order})")
    rows = []
    strata = [("all", study)]
    if within:      # in the study file's order of levels
        strata = [(_stratum(within, combo), part) for combo in product(*(_levels(study, name) for name in within))
                  if len(part := study[np.logical_and.reduce([study[name].map(_key) == _key(value)
                                                              for name, value in zip(within, combo)])])]
    for stat in run_stats:
        for stratum, part in strata:
            rows += _level_rows(part[part[stat].notna()], factor, order, baseline, stat, seed,
                                {"factor": factor, "stratum": stratum})
    frame = pd.DataFrame(rows)
    frame.attrs.update(baseline=baseline, confidence=CONFIDENCE, within=list(within))
    return frame


def _levels(study: pd.DataFrame, factor: str) -> list:
    """A factor's levels present in the table, in the study file's order."""
    present = set(map(_key, study[factor].dropna()))
    return [level for level in study.attrs.get("factors", {}).get(factor, []) if _key(level) in present] \
        or list(dict.fromkeys(study[factor].dropna().tolist()))


def _stratum(within: list[str] | tuple[str, ...], values: tuple) -> str:
    return ", ".join(f"{name}={level_text(value)}" for name, value in zip(within, values))


def _level_rows(runs: pd.DataFrame, factor: str, order: list, baseline: object, stat: str, seed: int,
                fixed: dict) -> list[dict]:
    """One stratum's rows: each level's runs against the baseline level's."""
    base = runs.loc[runs[factor] == baseline, stat].to_numpy(dtype=float)
    rows = []
    for level in order:
        values = runs.loc[runs[factor] == level, stat].to_numpy(dtype=float)
        if not len(values):
            continue
        low, high = _interval((values,), _mean, seed)
        row = {**fixed, "level": level, "stat": stat, "runs": len(values), "value_ns": float(values.mean()),
               "ci_low_ns": low, "ci_high_ns": high}
        if level == baseline:
            row.update(ratio=1.0, ratio_low=1.0, ratio_high=1.0, p_value=np.nan)
        elif not len(base):
            row.update(ratio=np.nan, ratio_low=np.nan, ratio_high=np.nan, p_value=np.nan)
        else:
            r_low, r_high = _interval((values, base), _ratio, seed)
            row.update(ratio=float(values.mean() / base.mean()), ratio_low=r_low, ratio_high=r_high,
                       p_value=float(scipy_stats.mannwhitneyu(values, base, alternative="two-sided").pvalue))
        rows.append(row)
    return rows


def study_effects(study: pd.DataFrame, factor_names: list[str] | None = None, baseline: object | None = None,
                  pooled: bool = False) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """Per experiment of a df_study table and per factor (default: each varied within that
    experiment): the experiment, the factor, its df_effects and the experiment's runs.

    Each factor is compared within every combination of the experiment's other varied
    factors (matched comparisons), unless ``pooled``. ``baseline`` is the baseline of the
    factors that have such a level. Experiments measure different things, so their runs are
    never pooled; a task graph's makespan is among its statistics."""
    for name, runs in study.groupby("experiment", sort=False):
        runs = runs.copy()
        runs.attrs.update(study.attrs)
        run_stats = RUN_STATS + (("makespan",) if runs["makespan"].notna().any() else ())
        varied = factors(runs)
        for factor in factor_names or varied:
            mine = baseline if baseline is not None and _key(baseline) in map(_key, _levels(runs, factor)) else None
            within = () if pooled else [other for other in varied if other != factor]
            yield str(name), factor, df_effects(runs, factor, mine, run_stats=run_stats, within=within), runs


def factors(study: pd.DataFrame) -> list[str]:
    """The factors of a df_study table that have more than one level."""
    fixed = {"experiment", "repetition", "order", "host", "run_dir", "samples", "accel", "makespan", *RUN_STATS}
    return [c for c in study.columns if c not in fixed and study[c].nunique() > 1]


def readable_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """df_effects for reading: durations with units, intervals as ``[low, high]``."""
    out = pd.DataFrame({"level": effects["level"].astype(str), "stat": effects["stat"], "runs": effects["runs"]})
    if effects.attrs.get("within"):
        out.insert(0, "within", effects["stratum"])
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
    ax.set_yscale("log")        # the levels of other factors may lie orders of magnitude apart
    ax.legend(fontsize="small")
    ax.set_title(f"{stat} of each run in run order")
    fig.tight_layout()
    return fig


def plot_effects(effects: pd.DataFrame, title: str = "", tcg: bool = False) -> Figure:
    """Per statistic (columns): each level's mean over runs with its interval (top), and its
    ratio to the baseline level with its interval (bottom), side by side in each stratum of
    the factors held fixed. Log scales: effects are ratios."""
    stats_ = list(dict.fromkeys(effects["stat"]))
    strata = list(dict.fromkeys(effects["stratum"]))
    levels_ = list(dict.fromkeys(effects["level"].map(_key)))
    baseline = _key(effects.attrs.get("baseline"))
    width = max(3.6, 0.8 * len(strata) + 1.5)
    fig, axes = plt.subplots(2, len(stats_), figsize=(width * len(stats_) + 1, 7), squeeze=False)
    offsets = {key: (j - (len(levels_) - 1) / 2) * 0.6 / max(1, len(levels_)) for j, key in enumerate(levels_)}
    for col, stat in enumerate(stats_):
        part = effects[effects["stat"] == stat]
        for j, key in enumerate(levels_):
            mine = part[part["level"].map(_key) == key]
            x = np.array([strata.index(st) for st in mine["stratum"]]) + offsets[key]
            runs = f"{mine['runs'].min()}–{mine['runs'].max()}" if mine["runs"].nunique() > 1 else mine["runs"].iloc[0]
            label = f"{mine['level'].iloc[0]} ({runs} runs each)"
            values = mine["value_ns"].to_numpy() / 1e3
            axes[0, col].errorbar(x, values, yerr=[values - mine["ci_low_ns"].to_numpy() / 1e3,
                                                   mine["ci_high_ns"].to_numpy() / 1e3 - values],
                                  fmt="o", capsize=3, color=f"C{j}", label=label)
            if key != baseline:
                ratio = mine["ratio"].to_numpy()
                axes[1, col].errorbar(x, ratio, yerr=[ratio - mine["ratio_low"].to_numpy(),
                                                      mine["ratio_high"].to_numpy() - ratio],
                                      fmt="o", capsize=3, color=f"C{j}")
        axes[0, col].set_title(f"{stat} (mean over runs)")
        axes[0, col].set_ylabel("µs")
        axes[1, col].axhline(1.0, color="grey", lw=0.8, ls="--")
        axes[1, col].set_ylabel(f"ratio to {effects.attrs.get('baseline')}")
        for ax in axes[:, col]:
            ax.set_yscale("log")
            ax.set_xticks(range(len(strata)), strata if len(strata) > 1 else [""], rotation=30, ha="right",
                          fontsize="small")
            ax.set_xlim(-0.5, len(strata) - 0.5)
    axes[0, 0].legend(fontsize="small")
    factor = effects["factor"].iloc[0] if len(effects) else ""
    held = f", within each {' × '.join(effects.attrs['within'])}" if effects.attrs.get("within") else ""
    fig.suptitle((title or f"{factor}: {CONFIDENCE:.0%} bootstrap intervals over runs{held}")
                 + (" — TCG: emulation timings" if tcg else ""))
    fig.tight_layout()
    return fig
