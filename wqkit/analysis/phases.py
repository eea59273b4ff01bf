"""A work item's wait, broken into the phases the patched kernel timestamps.

On a kernel built with CONFIG_WQ_MEASURE (linux_patch_exp/), an insert_exec
run also has ``phases.parquet``: per work item, the kernel's TSC stamps at
``queue`` (entry of __queue_work), ``insert``, ``activate`` (only when
max_active held it back), ``wake`` (only when a worker was woken for it),
``start`` (process_one_work) and ``func`` (its function is called). A point
an item did not pass is 0 in the file. Each phase runs from the previous
stamp the item has to the next:

    queue → insert            taking the pool lock, choosing the pwq, inserting
    insert → activate         waiting on the inactive list (max_active)
    → wake                    until an idle worker is woken for it
    → process start           the worker's wake-up and the items before it
    process start → function  process_one_work()'s bookkeeping
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from wqkit.analysis.load import Run
from wqkit.analysis.units import unit_for
from wqkit.errors import WqkitError

PHASES = {"queue → insert": "insert", "insert → activate": "activate", "→ wake": "wake",
          "→ process start": "start", "process start → function": "func"}
#: Bands of the total (queue → function) whose phases plot_phases stacks.
BANDS = ((0, 50), (50, 90), (90, 99), (99, 100))


def load_phases(run: Run) -> pd.DataFrame | None:
    """The run's raw stamps (``phases.parquet``), or None when the kernel had no measurement points."""
    path = run.path / "phases.parquet"
    return pq.read_table(path).to_pandas() if path.is_file() else None


def df_phases(run: Run) -> pd.DataFrame:
    """Per work item, each phase in ns (NaN when the item did not go through it: not held
    back by max_active, no worker woken for it), the total, and the module's own interval
    for comparison; indexed by seq.

    Raises when the run has no phases, or when an item's stamps go backwards.
    """
    stamps = load_phases(run)
    if stamps is None:
        raise WqkitError(f"{run.name}: no phases.parquet (the kernel was not built with CONFIG_WQ_MEASURE)")
    stamps = stamps.set_index("seq")
    scale = 1e6 / run.tsc_khz
    previous = stamps["queue"].to_numpy(dtype=np.int64)
    out = pd.DataFrame(index=stamps.index)
    for phase, point in PHASES.items():
        at = stamps[point].to_numpy(dtype=np.int64)
        passed = at != 0
        if (at[passed] < previous[passed]).any():
            bad = stamps.index[passed][np.flatnonzero(at[passed] < previous[passed])[0]]
            raise WqkitError(f"{run.name}: work item {bad}: the {point} stamp is before the previous one")
        out[phase] = np.where(passed, (at - previous) * scale, np.nan)
        previous = np.where(passed, at, previous)
    out["total"] = (stamps["func"].to_numpy(dtype=np.int64) - stamps["queue"].to_numpy(dtype=np.int64)) * scale
    module = run.samples.set_index("seq").loc[out.index]
    out["module"] = module["cycles"].to_numpy(dtype=np.float64) * scale
    return out


def df_phase_summary(run: Run) -> pd.DataFrame:
    """Per phase, over the items that went through it (``items`` of them): median, p99 and
    mean (ns); and its share of the total wait of all items.

    An item not held back by max_active has no "insert → activate" phase: it is not a
    0 ns wait there, so it is left out of that phase's percentiles rather than pulling
    them to 0.
    """
    phases = df_phases(run)
    total = phases["total"].sum()
    rows = {}
    for column in [*PHASES, "total", "module"]:
        values = phases[column].dropna()
        rows[column] = {"items": len(values), "p50_ns": values.median(),
                        "p99_ns": values.quantile(0.99), "mean_ns": values.mean(),
                        "share": values.sum() / total if column in PHASES else float("nan")}
    return pd.DataFrame.from_dict(rows, orient="index")


def plot_phases(run: Run) -> Figure:
    """Where the wait goes: the mean of each phase, stacked, for items in each band of the total.

    The bands (fastest half, p50–p90, p90–p99, slowest 1 %) show whether the
    tail comes from one phase or from all of them.
    """
    phases = df_phases(run)
    total = phases["total"].to_numpy()
    edges = np.percentile(total, [b for b, _ in BANDS] + [100])
    labels, means = [], []
    for (low, high), lo_edge, hi_edge in zip(BANDS, edges[:-1], edges[1:]):
        inside = (total >= lo_edge) & ((total <= hi_edge) if high == 100 else (total < hi_edge))
        labels.append(f"p{low}–p{high}\n(n={int(inside.sum())})")
        means.append(phases.loc[inside, list(PHASES)].fillna(0).mean())
    unit, scale = unit_for([float(np.median(total))])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = np.zeros(len(BANDS))
    for phase in PHASES:
        heights = np.array([m[phase] for m in means]) / scale
        ax.bar(labels, heights, bottom=bottom, label=phase)
        bottom += heights
    ax.set_ylabel(f"mean per item ({unit})")
    ax.set_xlabel("work items by their total wait (queue → function)")
    ax.legend(fontsize=7)
    fig.suptitle(f"Phases of the wait: {run.label}\n{run.origin}", fontsize=8)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.86, bottom=0.15)
    return fig
