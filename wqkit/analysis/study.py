"""A study's answer with its uncertainty, the boot as the unit (see :mod:`wqkit.analysis.boots`).

``df_study`` is one row per ok run: its levels, the boot it ran in, what may
decide its regime (the CPUs its work was queued and run on) and its
statistics. ``df_effects`` compares the levels of one factor: per level its
boots' geometric mean with a t interval over boots, the variance between
boots and between runs of one boot, and its ratio to the baseline level
with a Welch (independent boots) or paired (both levels in every boot) t
interval, the t test's p and a rank test's on boot-level values.
``study_effects`` makes every comparison of a study and adjusts their
p-values together (Holm: the chance that any surviving effect is a false
one stays under 5 %), marking those that survive.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter

from wqkit.analysis import boots
from wqkit.analysis.kserver import df_tasks, makespan_ns
from wqkit.analysis.load import Run, TraceRun, load_run
from wqkit.analysis.placement import df_study_placement
from wqkit.analysis.study_runs import boot_of
from wqkit.analysis.upstream import df_scope_benchmark
from wqkit.analysis.stats import PERCENTILES, percentile
from wqkit.analysis.units import format_duration
from wqkit.analysis.workers import durations_ns
from wqkit.errors import WqkitError
from wqkit.runs.kinds import upstream_kinds
from wqkit.runs.spec import experiment, experiments
from wqkit.study.index import STUDY_META, levels, read_index
from wqkit.study.spec import level_text

CONFIDENCE = boots.CONFIDENCE
#: The family-wise error rate Holm's adjustment holds a study's comparisons to.
FAMILY_ALPHA = 0.05
#: A run's percentiles of what its experiment measures (a trace: its durations).
PERCENTILE_STATS = ("p50", "p90", "p99")
#: A task graph run's statistics: its median makespan over repetitions, and the percentiles of
#: its tasks' waits (ready → start) and run times (start → end), kept apart.
GRAPH_STATS = ("makespan", "wait_p50", "wait_p90", "wait_p99", "run_p50", "run_p90", "run_p99")
RUN_STATS = PERCENTILE_STATS + GRAPH_STATS
#: What a run records that may decide its regime: its work's most common queuing and
#: executing CPU, and the share of items run on another CPU than the one that queued them.
COVARIATES = ("cpu_queue", "cpu_exec", "migrated")
#: Columns of df_study that are neither factors nor statistics.
RUN_COLUMNS = ("experiment", "repetition", "block", "order", "boot", "host", "run_dir", "samples", "accel",
               "boot_seconds", "duration_s", *COVARIATES)


def run_durations_ns(run: Run | TraceRun) -> np.ndarray:
    """What a study compares of one run that is not a task graph, sorted, in ns: an
    experiment's samples; a worker trace's create_worker() (or told-to-die → exit) durations;
    a latency trace's queue → start of execution; a trace's first engine only (engines traced
    together bias each other)."""
    if isinstance(run, Run):
        return run.sorted_ns
    if "upstream" in run.meta:      # a benchmark's own results (one row per scope): no distribution
        return np.array([], dtype=float)
    events = run.events[run.events["engine"] == run.meta["engines"][0]]
    if run.experiment == "trace_latency":
        values = (events["start_ns"] - events["queue_ns"]).to_numpy(dtype=float)
    else:
        values = durations_ns(run.meta, events).to_numpy(dtype=float)
    return np.sort(values)


def _percentiles(prefix: str, values: np.ndarray) -> dict[str, float]:
    values = np.sort(np.asarray(values, dtype=float))
    return {f"{prefix}{name}": percentile(values, PERCENTILES[name]) if len(values) else np.nan
            for name in PERCENTILE_STATS}


def run_statistics(run: Run | TraceRun) -> dict:
    """A run's statistics (ns), its sample count and covariates; NaN where they do not apply."""
    row: dict = dict.fromkeys(RUN_STATS, np.nan) | dict.fromkeys(COVARIATES, np.nan)
    if isinstance(run, Run) and experiment(run.experiment).graph:
        tasks = df_tasks(run)
        row |= {"samples": len(tasks), "makespan": makespan_ns(run), **_percentiles("wait_", tasks["wait_ns"]),
                **_percentiles("run_", tasks["run_ns"])}
    else:
        values = run_durations_ns(run)
        row |= {"samples": len(values), **_percentiles("", values)}
    if isinstance(run, Run) and len(run.samples):
        samples = run.samples
        row |= {"cpu_queue": int(samples["cpu_queue"].mode().iloc[0]),
                "cpu_exec": int(samples["cpu_exec"].mode().iloc[0]),
                "migrated": float((samples["cpu_queue"].to_numpy() != samples["cpu_exec"].to_numpy()).mean())}
    return row


def df_study(directory: str | Path) -> pd.DataFrame:
    """One row per ok run of a study: its factor levels, experiment, repetition, block, order,
    the boot it ran in (``boot``: the guest's boot id), host, run directory, sample count,
    accelerator, boot and run seconds, covariates and statistics (ns, :data:`RUN_STATS`)."""
    directory = Path(directory)
    index = read_index(directory)
    ok = index[index["status"] == "ok"]
    rows = []
    for key, row in ok.iterrows():
        run = load_run(directory / row["run_dir"])
        rows.append({"key": key, "boot": boot_of(run.meta, row), "accel": run.meta.get("accel"),
                     "boot_seconds": (run.meta.get("lab") or {}).get("boot_seconds", np.nan),
                     **run_statistics(run)})
    columns = ["key", "boot", "accel", "boot_seconds", "samples", *COVARIATES, *RUN_STATS]
    frame = pd.DataFrame(rows, columns=columns).set_index("key")
    base = ok[[c for c in ("experiment", "repetition", "block", "order", "host", "run_dir", "duration_s")
               if c in ok.columns]]
    table = levels(ok).join(base).join(frame)
    meta = json.loads((directory / STUDY_META).read_text())
    counts = index["status"].value_counts()
    table.attrs.update(failed=int(counts.get("failed", 0)), pending=int(counts.get("pending", 0)),
                       factors=meta["factors"], name=meta.get("name", directory.name))
    return table.reset_index(drop=True)


def study_placements(directory: str | Path, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per queue → execution experiment of a study, where its items ran (df_study_placement)."""
    names = [name for name in sorted(set(table["experiment"]))
             if name in experiments() and experiments()[name].queue_to_execution]
    found = {name: df_study_placement(directory, name) for name in names}
    return {name: placement for name, placement in found.items() if len(placement)}


def study_benchmarks(directory: str | Path, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per kernel benchmark module of a study, its figures per scope (df_scope_benchmark)."""
    return {name: df_scope_benchmark(directory, name) for name in sorted(set(table["experiment"]))
            if name in upstream_kinds()}


def _key(level: object) -> str:
    return json.dumps(level)


def df_effects(study: pd.DataFrame, factor: str, baseline: object | None = None,
               run_stats: tuple[str, ...] = PERCENTILE_STATS,
               within: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Per level of ``factor`` and per statistic: boots and runs behind it, the geometric mean
    over boots with its t interval, the variance components (``sd_boot``, ``sd_run``: standard
    deviations of the runs' logs, about relative spreads), regimes among its boots, and against
    ``baseline`` (default: the study file's first level) the ratio of geometric means with
    its interval, the comparison's ``design`` (paired or independent boots), the t test's
    ``p_value`` and the rank test's ``p_rank``. p-values are not adjusted here: see
    :func:`study_effects`.

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
    if _key(baseline) not in map(_key, order):
        raise WqkitError(f"{factor}: no level {baseline!r} (levels: {order})")
    if "boot" not in study.columns:         # a table of runs without boots: each run its own
        study = study.assign(boot=[f"run{i}" for i in range(len(study))])
    rows = []
    for stat in run_stats:
        for stratum, part in _strata(study, within):
            rows += _level_rows(part, factor, order, baseline, stat, {"factor": factor, "stratum": stratum})
    frame = pd.DataFrame(rows)
    frame.attrs.update(baseline=baseline, confidence=CONFIDENCE, within=list(within))
    return frame


def _levels(study: pd.DataFrame, factor: str) -> list:
    """A factor's levels present in the table, in the study file's order."""
    present = set(map(_key, study[factor].dropna()))
    return [level for level in study.attrs.get("factors", {}).get(factor, []) if _key(level) in present] \
        or list(dict.fromkeys(study[factor].dropna().tolist()))


def _strata(study: pd.DataFrame, within: list[str] | tuple[str, ...]) -> list[tuple[str, pd.DataFrame]]:
    """The runs of each combination of the ``within`` factors' levels, named and in the study
    file's order (one stratum, ``all``, without them)."""
    if not within:
        return [("all", study)]
    strata = []
    for combo in product(*(_levels(study, name) for name in within)):
        part = study[np.logical_and.reduce([study[name].map(_key) == _key(value)
                                            for name, value in zip(within, combo)])]
        if len(part):
            strata.append((", ".join(f"{name}={level_text(value)}" for name, value in zip(within, combo)), part))
    return strata


def _boot_logs(runs: pd.DataFrame, stat: str) -> tuple[pd.Series, list[np.ndarray]]:
    """Each boot's mean log of the runs' statistic (indexed by boot), and each boot's run logs."""
    logs = np.log(runs[stat].to_numpy(dtype=float))
    groups = pd.Series(logs, index=runs["boot"].to_numpy()).groupby(level=0, sort=False)
    return groups.mean(), [g.to_numpy() for _, g in groups]


def _regime_text(boot_logs: pd.Series) -> str:
    split = boots.regimes(boot_logs.to_numpy())
    if split is None:
        return ""
    low, high = (format_duration(float(np.exp(np.median(boot_logs[mask])))) for mask in split)
    return f"2 regimes: {split[0].sum()} boots ≈{low}, {split[1].sum()} ≈{high}"


def _level_rows(runs: pd.DataFrame, factor: str, order: list, baseline: object, stat: str,
                fixed: dict) -> list[dict]:
    """One stratum's rows: each level's boots against the baseline level's."""
    usable = runs[runs[stat].notna() & (runs[stat] > 0)]     # logs: a statistic ≤ 0 cannot be a ratio
    by_level = {_key(level): usable[usable[factor].map(_key) == _key(level)] for level in order}
    base_boots, _ = _boot_logs(by_level[_key(baseline)], stat)
    rows = []
    for level in order:
        mine = by_level[_key(level)]
        if not len(mine):
            continue
        boot_logs, run_groups = _boot_logs(mine, stat)
        value = boots.mean_interval(boot_logs.to_numpy())
        var_boot, var_run = boots.variance_components(run_groups)
        dropped = int(((runs[factor].map(_key) == _key(level)) & runs[stat].notna()).sum()) - len(mine)
        notes = [f"{dropped} runs ≤ 0 left out"] if dropped else []
        if len(boot_logs) < 2:
            notes.append(f"{len(boot_logs)} boot: no interval (it needs two boots)")
        row = {**fixed, "level": level, "stat": stat, "boots": len(boot_logs), "runs": len(mine),
               "value_ns": float(np.exp(value.estimate)), "ci_low_ns": float(np.exp(value.low)),
               "ci_high_ns": float(np.exp(value.high)), "sd_boot": float(np.sqrt(var_boot)),
               "sd_run": float(np.sqrt(var_run)), "regimes": _regime_text(boot_logs)}
        if _key(level) == _key(baseline):
            row.update(ratio=1.0, ratio_low=np.nan, ratio_high=np.nan, design="baseline", p_value=np.nan,
                       p_rank=np.nan)
        else:
            row.update(_compare(boot_logs, base_boots))
            if len(base_boots) < 2 and len(boot_logs) >= 2:
                notes.append(f"baseline has {len(base_boots)} boot: no ratio interval")
        rows.append(row | {"note": "; ".join(notes)})
    return rows


def _compare(level_boots: pd.Series, base_boots: pd.Series) -> dict:
    """The ratio of two levels' geometric means over boots: paired when both ran in the same
    boots (a factor varied within each boot), else Welch's."""
    if not len(base_boots):
        return {"ratio": np.nan, "ratio_low": np.nan, "ratio_high": np.nan, "design": "", "p_value": np.nan,
                "p_rank": np.nan}
    paired = len(level_boots) >= 2 and set(level_boots.index) == set(base_boots.index)
    if paired:
        a, b = level_boots.to_numpy(), base_boots.reindex(level_boots.index).to_numpy()
        result = boots.paired_interval(a - b)
    else:
        a, b = level_boots.to_numpy(), base_boots.to_numpy()
        result = boots.welch_interval(a, b)
    return {"ratio": float(np.exp(result.estimate)), "ratio_low": float(np.exp(result.low)),
            "ratio_high": float(np.exp(result.high)), "design": "paired" if paired else "independent",
            "p_value": float(result.p_value), "p_rank": boots.rank_p_value(a, b, paired)}


def study_effects(study: pd.DataFrame, factor_names: list[str] | None = None, baseline: object | None = None,
                  pooled: bool = False) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """Per experiment of a df_study table and per factor (default: each varied within that
    experiment): the experiment, the factor, its df_effects and the experiment's runs.

    Every comparison of the study (each non-baseline level, stratum and statistic) is one of
    a family whose t-test p-values are adjusted together by Holm's method: ``p_adjusted``,
    and ``survives`` where it is below FAMILY_ALPHA (each frame's attrs say the family's
    size). Each factor is compared within every combination of the experiment's other
    varied factors (matched comparisons), unless ``pooled``. ``baseline`` is the baseline of
    the factors that have such a level. Experiments measure different things, so their runs
    are never pooled."""
    made = []
    for name, runs in study.groupby("experiment", sort=False):
        runs = runs.copy()
        runs.attrs.update(study.attrs)
        run_stats = tuple(stat for stat in RUN_STATS if runs[stat].notna().any())
        if not run_stats:       # a kernel benchmark's own figures: study_benchmarks
            continue
        varied = factors(runs)
        for factor in factor_names or varied:
            mine = baseline if baseline is not None and _key(baseline) in map(_key, _levels(runs, factor)) else None
            within = () if pooled else [other for other in varied if other != factor]
            made.append((str(name), factor, df_effects(runs, factor, mine, run_stats=run_stats, within=within), runs))
    p_values = np.concatenate([effects["p_value"].to_numpy(dtype=float) for _, _, effects, _ in made]) \
        if made else np.array([])
    adjusted = boots.holm(p_values)
    family = int(np.isfinite(p_values).sum())
    start = 0
    for name, factor, effects, runs in made:
        effects["p_adjusted"] = adjusted[start:start + len(effects)]
        effects["survives"] = effects["p_adjusted"] < FAMILY_ALPHA
        effects.attrs.update(family=family, adjustment="holm", alpha=FAMILY_ALPHA)
        start += len(effects)
        yield name, factor, effects, runs


def factors(study: pd.DataFrame) -> list[str]:
    """The factors of a df_study table that have more than one level."""
    fixed = {*RUN_COLUMNS, *RUN_STATS, "key"}
    return [c for c in study.columns if c not in fixed and study[c].nunique() > 1]


def df_regimes(study: pd.DataFrame, stat: str = "p50") -> pd.DataFrame:
    """Points whose boots fall into two regimes of ``stat``: per point and regime, its boots,
    the range of their values and the covariates seen in them (most common queuing and
    executing CPU of each run, share migrated), so that what decides a regime can be read
    off or used as a covariate."""
    rows = []
    names = [c for c in study.columns if c not in {*RUN_COLUMNS, *RUN_STATS}]
    for point, runs in study[study[stat] > 0].groupby(["experiment", *names], sort=False, dropna=False):
        boot_logs, _ = _boot_logs(runs, stat)
        split = boots.regimes(boot_logs.to_numpy())
        if split is None:
            continue
        for regime, mask in zip(("low", "high"), split):
            mine = runs[runs["boot"].isin(boot_logs.index[mask])]
            rows.append({"point": ", ".join(f"{n}={level_text(v)}" for n, v in zip(["experiment", *names], point)),
                         "stat": stat, "regime": regime, "boots": int(mask.sum()),
                         "low_ns": float(np.exp(boot_logs[mask].min())),
                         "high_ns": float(np.exp(boot_logs[mask].max())),
                         "cpu_queue": _counts(mine["cpu_queue"]), "cpu_exec": _counts(mine["cpu_exec"]),
                         "migrated": float(mine["migrated"].mean())})
    return pd.DataFrame(rows, columns=["point", "stat", "regime", "boots", "low_ns", "high_ns", "cpu_queue",
                                       "cpu_exec", "migrated"])


def _counts(values: pd.Series) -> str:
    """``CPU 0 ×3, CPU 1 ×1``: how many runs had each value."""
    counts = values.dropna().astype(int).value_counts().sort_index()
    return ", ".join(f"CPU {cpu} ×{n}" for cpu, n in counts.items())


def readable_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """df_effects (adjusted by study_effects, if it was) for reading: durations with units,
    intervals as ``[low, high]``, spreads as percentages, raw and adjusted p."""
    out = pd.DataFrame({"level": effects["level"].astype(str), "stat": effects["stat"],
                        "boots×runs": [f"{b}×{r / b:.3g}" for b, r in zip(effects["boots"], effects["runs"])]})
    if effects.attrs.get("within"):
        out.insert(0, "within", effects["stratum"])
    out["value"] = effects["value_ns"].map(format_duration)
    out[f"{CONFIDENCE:.0%} CI"] = [_bracket(lo, hi, format_duration) for lo, hi in
                                   zip(effects["ci_low_ns"], effects["ci_high_ns"])]
    out["sd boot/run"] = [f"{_percent(b)}/{_percent(r)}" for b, r in zip(effects["sd_boot"], effects["sd_run"])]
    out["ratio"] = ["" if d == "baseline" else f"{r:.3f} {_bracket(lo, hi, lambda v: f'{v:.3f}')}"
                    for r, lo, hi, d in zip(effects["ratio"], effects["ratio_low"], effects["ratio_high"],
                                            effects["design"])]
    out["design"] = effects["design"].replace("baseline", "")
    out["p (t)"] = effects["p_value"].map(_p)
    if "p_adjusted" in effects:
        out["p (Holm)"] = effects["p_adjusted"].map(_p)
        out["survives"] = ["yes" if s else "" for s in effects["survives"]]
    out["p (rank)"] = effects["p_rank"].map(_p)
    out["regimes, notes"] = ["; ".join(t for t in (r, n) if t) for r, n in zip(effects["regimes"], effects["note"])]
    return out


def _bracket(low: float, high: float, fmt) -> str:
    return "no interval" if not (np.isfinite(low) and np.isfinite(high)) else f"[{fmt(low)}, {fmt(high)}]"


def _percent(sd: float) -> str:
    return "?" if not np.isfinite(sd) else f"{sd:.0%}"


def _p(p: float) -> str:
    return "" if not np.isfinite(p) else f"{p:.3g}"


class _PlainLog(LogFormatter):
    """Log-axis labels as plain numbers (0.6, 1000), on the ticks LogFormatter would label: the
    minor ones only where the axis spans less than a decade."""

    def __call__(self, x, pos=None) -> str:
        return np.format_float_positional(float(f"{x:.3g}"), trim="-") if super().__call__(x, pos) else ""


def plot_order(study: pd.DataFrame, factor: str, stat: str = "p50") -> Figure:
    """Each run's statistic in the order the runs were made, coloured by ``factor``'s level:
    drift of the host shows as a trend shared by every level, an effect as a gap between them."""
    fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    for i, level in enumerate(_levels(study, factor)):     # the colours of plot_effects
        part = study[study[factor].map(_key) == _key(level)]
        ax.plot(part["order"], part[stat] / 1e3, "o", color=f"C{i}", label=f"{factor}={level_text(level)}")
    ax.set_xlabel("run order (boots in randomised blocks)")
    ax.set_ylabel(f"{stat} (µs)")
    ax.set_yscale("log")        # the levels of other factors may lie orders of magnitude apart
    fig.legend(loc="outside lower center", ncols=min(4, study[factor].nunique()), fontsize="small")
    ax.set_title(f"{stat} of each run in run order")
    return fig


def plot_effects(effects: pd.DataFrame, runs: pd.DataFrame | None = None, title: str = "",
                 tcg: bool = False) -> Figure:
    """Per statistic (columns): each level's geometric mean over boots with its interval,
    beside every run's value (small dots, one column of dots per boot) (top); its ratio to
    the baseline level with its interval (bottom), filled where the effect survives the
    study's adjustment, hollow where it does not. Strata side by side; log scales (effects
    are ratios); the legend below the plots, never over a point."""
    stats_ = list(dict.fromkeys(effects["stat"]))
    strata = list(dict.fromkeys(effects["stratum"]))
    levels_ = list(dict.fromkeys(effects["level"].map(_key)))
    baseline = _key(effects.attrs.get("baseline"))
    factor = effects["factor"].iloc[0] if len(effects) else ""
    width = max(3.6, 0.9 * len(strata) + 1.5)
    fig, axes = plt.subplots(2, len(stats_), figsize=(width * len(stats_) + 1, 7.5), squeeze=False,
                             layout="constrained")
    step = 0.7 / max(1, len(levels_))
    offsets = {key: (j - (len(levels_) - 1) / 2) * step for j, key in enumerate(levels_)}
    within = effects.attrs.get("within") or []
    for col, stat in enumerate(stats_):
        part = effects[effects["stat"] == stat]
        for j, key in enumerate(levels_):
            mine = part[part["level"].map(_key) == key]
            if not len(mine):
                continue
            x = np.array([strata.index(st) for st in mine["stratum"]]) + offsets[key]
            if runs is not None:
                _plot_runs(axes[0, col], runs, factor, json.loads(key), within, strata, stat,
                           offsets[key] + step * 0.45, step * 0.4, f"C{j}")
            values = mine["value_ns"].to_numpy() / 1e3
            low, high = mine["ci_low_ns"].to_numpy() / 1e3, mine["ci_high_ns"].to_numpy() / 1e3
            axes[0, col].errorbar(x, values, yerr=[np.nan_to_num(values - low), np.nan_to_num(high - values)],
                                  fmt="s", ms=6, capsize=3, color=f"C{j}", mec="black", zorder=3)
            if key == baseline:
                continue
            ratio = mine["ratio"].to_numpy()
            below = np.nan_to_num(ratio - mine["ratio_low"].to_numpy())
            above = np.nan_to_num(mine["ratio_high"].to_numpy() - ratio)
            survives = mine["survives"].to_numpy(dtype=bool) if "survives" in mine else np.zeros(len(mine), bool)
            for filled in (True, False):
                sel = survives == filled
                axes[1, col].errorbar(x[sel], ratio[sel], yerr=[below[sel], above[sel]], fmt="o", capsize=3,
                                      color=f"C{j}", mfc=f"C{j}" if filled else "white")
        axes[0, col].set_title(f"{stat}: geometric mean over boots")
        axes[0, col].set_ylabel("µs")
        axes[1, col].axhline(1.0, color="grey", lw=0.8, ls="--")
        axes[1, col].set_ylabel(f"ratio to {effects.attrs.get('baseline')}")
        for ax in axes[:, col]:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
            ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
            ax.set_xticks(range(len(strata)), strata if len(strata) > 1 else [""], rotation=30, ha="right",
                          fontsize="small")
            ax.set_xlim(-0.5, len(strata) - 0.5)
    boots_ = f"{effects['boots'].min()}–{effects['boots'].max()}" if effects["boots"].nunique() > 1 \
        else str(effects["boots"].iloc[0]) if len(effects) else "0"
    handles = [Line2D([], [], marker="s", ls="", color=f"C{j}", mec="black",
                      label=f"{factor}={level_text(json.loads(key))}") for j, key in enumerate(levels_)]
    handles += [Line2D([], [], marker=".", ls="", color="grey", label="a run (dots of one boot in one column)"),
                Line2D([], [], marker="o", ls="", color="grey", label="ratio: survives Holm"),
                Line2D([], [], marker="o", ls="", color="grey", mfc="white", label="ratio: does not")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize="small")
    held = f", within each {' × '.join(within)}" if within else ""
    fig.suptitle((title or f"{factor}: {CONFIDENCE:.0%} t intervals over boots ({boots_} boots a level){held}")
                 + (" — TCG: emulation timings" if tcg else ""))
    return fig


def _plot_runs(ax, runs: pd.DataFrame, factor: str, level: object, within: list[str], strata: list[str], stat: str,
               offset: float, width: float, colour: str) -> None:
    """Every run of one level as a small dot beside its interval, each boot's runs in a column
    of their own."""
    mine = runs[(runs[factor].map(_key) == _key(level)) & runs[stat].notna()]
    for label, part in _strata(mine, within):
        if label not in strata:
            continue
        boot_ids = list(dict.fromkeys(part["boot"]))
        for b, boot in enumerate(boot_ids):
            values = part.loc[part["boot"] == boot, stat].to_numpy() / 1e3
            x = strata.index(label) + offset + (b / max(1, len(boot_ids) - 1)) * width
            ax.plot(np.full(len(values), x), values, ".", ms=3, color=colour, alpha=0.55, zorder=2)
