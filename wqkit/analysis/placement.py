"""Where work items ran, against where they were queued: the question affinity scopes answer.

Each sample of a queue → execution experiment names its queuing CPU and the CPU
that ran it; the run's meta names each CPU's SMT siblings, last-level cache and
NUMA node as the guest's sysfs showed them (``cpu_topology``). Placement is a
fact of the kernel's logic, not of emulated time: valid under TCG too.

    df_placement(run)        items and share per place (queuing CPU, SMT sibling, ...)
    df_placements(runs)      one row per run: its shares, workers and CPUs used
    plot_placement(runs)     the shares as stacked bars (plot_study_placement: a study's)
    df_study_placement(dir)  a study's shares per level, over its boots
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from pathlib import Path

from wqkit.analysis.load import Run
from wqkit.analysis.study_runs import ok_runs
from wqkit.errors import WqkitError
from wqkit.runs.provenance import cpu_list_numbers

#: From nearest to farthest: an item counts in the first place that holds its executing CPU.
PLACES = ("queuing CPU", "SMT sibling", "same cache", "same node", "elsewhere")


def _groups(run: Run) -> dict[str, dict[int, set[int] | int]]:
    topology = run.meta.get("cpu_topology")
    if not topology or not topology.get("cpu"):
        raise WqkitError(f"{run.name}: its meta.json records no CPU topology (a run from before wqkit read "
                         "it): its placement cannot be told")
    cpus = topology["cpu"]
    return {"smt": {c: set(cpu_list_numbers(t)) for c, t in zip(cpus, topology["smt"])},
            "cache": {c: set(cpu_list_numbers(t)) for c, t in zip(cpus, topology["cache"])},
            "node": dict(zip(cpus, topology["node"]))}


def places(run: Run) -> pd.Series:
    """Each sample's place (one of PLACES), in sample order."""
    groups = _groups(run)
    queued, ran = run.samples["cpu_queue"].to_numpy(), run.samples["cpu_exec"].to_numpy()

    def place(q: int, e: int) -> str:
        if q == e:
            return PLACES[0]
        if e in groups["smt"].get(q, ()):
            return PLACES[1]
        if e in groups["cache"].get(q, ()):
            return PLACES[2]
        if groups["node"].get(q) == groups["node"].get(e):
            return PLACES[3]
        return PLACES[4]

    return pd.Series([place(int(q), int(e)) for q, e in zip(queued, ran)], name="place",
                     index=run.samples.index, dtype=pd.CategoricalDtype(PLACES, ordered=True))


def df_placement(run: Run) -> pd.DataFrame:
    """Items and their share per place, nearest first (every place shown, 0 where none ran)."""
    counts = places(run).value_counts().reindex(PLACES, fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame({"items": counts.astype(int), "share": counts / total if total else np.nan},
                        index=pd.Index(PLACES, name="place"))


def df_placements(runs: Iterable[Run], by: Iterable[str] = ("affinity_scope", "affinity_strict")) -> pd.DataFrame:
    """One row per run: its parameters ``by``, the kernel and CPU count, each place's share, and
    the distinct kworkers and CPUs that ran its items."""
    rows = []
    for run in runs:
        shares = df_placement(run)["share"]
        parameters = run.meta.get("parameters", {})
        rows.append({"run": run.name, "kernel": run.meta.get("kernel_release"), "cpus": run.meta.get("cpus"),
                     "topology": (run.meta.get("lab") or {}).get("topology"),
                     **{name: parameters.get(name) for name in by},
                     **shares.to_dict(), "workers": int(run.samples["pid"].nunique()),
                     "exec_cpus": int(run.samples["cpu_exec"].nunique()), "items": len(run.samples)})
    return pd.DataFrame(rows)


def plot_placement(runs: Iterable[Run], label: str = "affinity_scope"):
    """Stacked bars: each run's share of items per place, labelled by parameter ``label``."""
    table = df_placements(runs, by=(label,))
    names = [f"{row[label]} · {row['kernel']} · {row['topology'] or str(row['cpus']) + ' CPUs'}"
             for _, row in table.iterrows()]
    return plot_shares(table, names, "Where work items ran, against the CPU that queued them")


def plot_shares(table: pd.DataFrame, names: list[str], title: str):
    """Stacked horizontal bars of each row's PLACES shares, one bar per name."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.28 * len(table)))
    left = np.zeros(len(table))
    for place in PLACES:
        ax.barh(names, table[place], left=left, label=place)
        left += table[place].to_numpy()
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("share of work items")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.02 + 2.0 / (4 + len(table))), ncol=5, fontsize=8)
    fig.tight_layout()
    return fig


def df_study_placement(directory: str | Path, kind: str = "insert_exec") -> pd.DataFrame:
    """A study's placement (empty when its runs recorded no topology): per combination of its levels, the boots, each place's mean share over
    them (and the lowest and highest boot's share of the queuing CPU), and the kworkers and CPUs
    that ran the items (mean over boots). Placement is the kernel's logic: valid under TCG."""
    rows = [{**levels, "boot": boot, **df_placement(run)["share"].to_dict(),
             "workers": run.samples["pid"].nunique(), "exec_cpus": run.samples["cpu_exec"].nunique()}
            for levels, boot, run in ok_runs(directory, kind) if run.meta.get("cpu_topology")]
    if not rows:                # runs recorded before wqkit read the topology
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    by = [c for c in frame.columns if c not in ("boot", "workers", "exec_cpus", *PLACES)]
    grouped = frame.groupby(by, sort=False, dropna=False)
    table = grouped[list(PLACES) + ["workers", "exec_cpus"]].mean()
    table.insert(0, "boots", grouped["boot"].nunique())
    table["queuing CPU min"] = grouped[PLACES[0]].min()
    table["queuing CPU max"] = grouped[PLACES[0]].max()
    return table.reset_index()


def readable_placement(table: pd.DataFrame) -> pd.DataFrame:
    """df_study_placement for reading: shares in %, means rounded."""
    shown = table.copy()
    for column in (*PLACES, "queuing CPU min", "queuing CPU max"):
        shown[column] = (100 * shown[column]).round(1)
    for column in ("workers", "exec_cpus"):     # means over boots
        shown[column] = shown[column].round(1)
    return shown


def plot_study_placement(table: pd.DataFrame):
    """df_study_placement as stacked bars, one per combination of levels (mean over its boots)."""
    levels = [c for c in table.columns if c not in ("boots", "workers", "exec_cpus", "queuing CPU min",
                                                    "queuing CPU max", *PLACES)]
    names = [" · ".join(str(row[c]) for c in levels) for _, row in table.iterrows()]
    fig = plot_shares(table, names, "Where work items ran against the queuing CPU, mean over boots")
    fig.axes[0].set_ylabel(" · ".join(levels), fontsize=8)
    fig.tight_layout()
    return fig
