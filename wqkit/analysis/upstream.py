"""The kernel's own benchmarks run by wqkit (wqkit.experiments.upstream), over a study's boots.

lib/test_workqueue.c prints, per affinity scope, queue_work() items per second
and percentiles of each queue_work() call's duration. A study repeats it in
fresh boots: each level's figure is the geometric mean over boots with a t
interval (:mod:`wqkit.analysis.boots`). Its times are ktime's: under TCG they
are emulation timings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from wqkit.analysis import boots
from wqkit.analysis.study_runs import ok_runs
from wqkit.errors import WqkitError

#: What each scope's row holds, and the figures compared over boots.
FIGURES = ("items_per_s", "p50_ns", "p95_ns")


def df_scope_benchmark(directory: str | Path, kind: str = "test_workqueue") -> pd.DataFrame:
    """Per study level and scope: the boots, what the kernel measured for that scope
    (``measured_as``: another scope where the kernel lacks it), and each figure's geometric
    mean over boots with its 95 % t interval (``_low``/``_high``)."""
    rows = [{**levels, "boot": boot, **scope_row, "accel": run.meta.get("accel")}
            for levels, boot, run in ok_runs(directory, kind) for scope_row in run.events.to_dict("records")]
    if not rows:
        raise WqkitError(f"{directory}: no ok {kind} run")
    frame = pd.DataFrame(rows)
    by = [c for c in frame.columns if c not in ("boot", "measured_as", "accel", *FIGURES, "p90_ns")]
    out = []
    for key, group in frame.groupby(by, sort=False, dropna=False):
        per_boot = group.groupby("boot")[list(FIGURES)].mean()
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row |= {"boots": len(per_boot), "measured_as": ",".join(sorted(set(group["measured_as"]))),
                "accel": ",".join(sorted(set(group["accel"].dropna())))}
        for figure in FIGURES:
            interval = boots.mean_interval(np.log(per_boot[figure].to_numpy(dtype=float)))
            row |= {figure: float(np.exp(interval.estimate)), f"{figure}_low": float(np.exp(interval.low)),
                    f"{figure}_high": float(np.exp(interval.high))}
        out.append(row)
    return pd.DataFrame(out)


def plot_scope_benchmark(table: pd.DataFrame, figure: str = "items_per_s"):
    """One panel per level (a row per kernel, a column per machine shape): each scope's ``figure``
    on a log scale with its interval over boots; a scope the kernel measured as another is hatched."""
    import matplotlib.pyplot as plt

    facets = [c for c in table.columns if c not in ("scope", "boots", "measured_as", "accel")
              and not c.startswith(FIGURES) and not c.endswith(("_low", "_high")) and c != "p90_ns"]
    rows_by, cols_by = (facets[0], facets[1:]) if facets else (None, [])
    row_levels = list(dict.fromkeys(table[rows_by])) if rows_by else [None]
    col_keys = list(dict.fromkeys(map(tuple, table[cols_by].to_numpy()))) if cols_by else [()]
    fig, axes = plt.subplots(len(row_levels), len(col_keys), figsize=(3.6 * len(col_keys), 2.9 * len(row_levels)),
                             squeeze=False, sharey=True)
    for i, row_level in enumerate(row_levels):
        for j, col_key in enumerate(col_keys):
            ax = axes[i][j]
            mask = np.ones(len(table), dtype=bool)
            if rows_by:
                mask &= (table[rows_by] == row_level).to_numpy()
            for column, level in zip(cols_by, col_key):
                mask &= (table[column] == level).to_numpy()
            group = table[mask]
            x = np.arange(len(group))
            error = np.nan_to_num([group[figure] - group[f"{figure}_low"], group[f"{figure}_high"] - group[figure]])
            bars = ax.bar(x, group[figure], yerr=error, capsize=3, color="tab:blue")
            for bar, (_, row) in zip(bars, group.iterrows()):
                if row["measured_as"] != row["scope"]:
                    bar.set_hatch("//")
                    bar.set_facecolor("lightgrey")
            ax.set_yscale("log")
            ax.set_xticks(x, group["scope"], rotation=35, fontsize=8)
            ax.set_title(" · ".join(str(v) for v in ((row_level,) if rows_by else ()) + col_key), fontsize=9)
        axes[i][0].set_ylabel(figure.replace("_", " "))
    tcg = "tcg" in ",".join(table.get("accel", pd.Series(dtype=str)).astype(str))
    fig.suptitle("test_workqueue per affinity scope: geometric mean over boots, 95 % interval; hatched: the "
                 "kernel measured another scope" + ("\nTCG: emulation timings" if tcg else ""), fontsize=10)
    fig.tight_layout()
    return fig


def readable_benchmark(table: pd.DataFrame) -> pd.DataFrame:
    """df_scope_benchmark for reading: the estimates with their intervals as ``value [low, high]``."""
    shown = table[[c for c in table.columns if not c.endswith(("_low", "_high")) and c not in FIGURES]].copy()
    for figure in FIGURES:
        shown[figure] = [f"{v:,.0f} [{lo:,.0f}, {hi:,.0f}]" if np.isfinite(lo) else f"{v:,.0f}"
                         for v, lo, hi in zip(table[figure], table[f"{figure}_low"], table[f"{figure}_high"])]
    return shown
