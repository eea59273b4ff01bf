"""Worker creation and death, as traced by ``wqkit trace workers`` (bpftrace, BCC or both).

A traced run is its ``meta.json`` and ``events.parquet`` (see wqkit.trace.workers),
loaded by :func:`wqkit.analysis.load.load_run`; ``df_*`` return DataFrames
(durations in ns), ``plot_*`` figures titled with kernel and accelerator.
:func:`summary` is what ``--save-json`` keeps, and :func:`plot_summary` draws
it again without the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wqkit.analysis.plots import log_scale
from wqkit.analysis.units import unit_for
from wqkit.errors import WqkitError

__all__ = ["df_workers", "df_worker_summary", "df_engine_agreement", "attached_note", "summary",
           "read_summary", "plot_worker_durations", "plot_worker_arrivals", "plot_summary"]

#: What a saved summary needs to be printed and plotted again.
SUMMARY_KEYS = {"measurement", "engine", "kernel", "accel", "count", "p50_ns", "p99_ns", "durations_ns",
                "lost_events"}


def worker_kind(meta: dict) -> str:
    """creation or die: what a worker trace run measured."""
    return "creation" if meta["experiment"].endswith("creation") else "die"


def _what(kind: str) -> str:
    return "create_worker() duration" if kind == "creation" else "told to die → task exit"


def durations_ns(meta: dict, events: pd.DataFrame) -> pd.Series:
    """The measured durations of one engine's events: the create_worker() calls that made the
    flood's workers (creation: see :func:`df_workers`; every call in a run recorded before the
    flood's pool was kept), told-to-die → exit (die). Other create_worker() calls the kernel made
    meanwhile (another pool, before the flood) are :func:`other_creations`."""
    if worker_kind(meta) == "die":
        return events.loc[events["event"] == "DEAD", "ns"].astype("int64").reset_index(drop=True)
    workers = df_workers(meta, events)
    if workers.empty:
        return pd.Series([], dtype="int64")
    flood = workers["flood_worker"] if "flood_pool" in meta.get("truth", {}) else True
    return workers.loc[flood, "duration_ns"].astype("int64").reset_index(drop=True)


def other_creations(meta: dict, events: pd.DataFrame) -> int:
    """create_worker() calls of one engine that did not make the flood's workers (not in its durations)."""
    if worker_kind(meta) == "die" or "flood_pool" not in meta.get("truth", {}):
        return 0
    workers = df_workers(meta, events)
    return int((~workers["flood_worker"]).sum()) if len(workers) else 0


def df_workers(meta: dict, events: pd.DataFrame) -> pd.DataFrame:
    """One row per engine and worker: pid, pool, duration_ns (create_worker() call, or told to die →
    exit) and, for creation, from the flood's first queued item to the create_worker() call
    (created_s: negative for a worker the kernel made before the flood) and to the worker's first
    item (first_item_s); whether it is one of the flood's workers (flood_worker: made on the pool
    the kernel says the flood went to, after the flood began), how many workers it made itself
    as its pool's manager (created_others: a new worker that finds work and no idle worker
    manages first), and whether it is the last worker made for the flood (last_made). The pool
    makes a worker only when work waits and no worker is idle, so a flood worker that ran no
    item either managed, or is the last one made: its maker ran the item it was made for, and
    no other item came that another worker did not take."""
    kind, rows = worker_kind(meta), []
    for engine, mine in events.groupby("engine", sort=False):
        timed = mine[mine["event"] == ("CREATE" if kind == "creation" else "DEAD")]
        frame = pd.DataFrame({"engine": engine, "pid": timed["pid"].astype(int),
                              "duration_ns": timed["ns"].astype("int64")})
        pools = mine[mine["event"] == ("CREATE" if kind == "creation" else "DYING")].set_index("pid")["pool"]
        frame["pool"] = frame["pid"].map(pools).astype("Int64")
        if kind == "creation":
            flood = mine.loc[mine["event"] == "FLOOD", "ns"]
            first = mine[mine["event"] == "FIRST"].set_index("pid")["ns"]
            flood_ns = flood.iloc[0] if len(flood) else np.nan
            frame["created_s"] = (timed["start_ns"] - flood_ns) / 1e9
            frame["first_item_s"] = (frame["pid"].map(first) - flood_ns) / 1e9
            pool = meta.get("truth", {}).get("flood_pool")
            frame["flood_worker"] = (frame["pool"] == pool).fillna(False) & (frame["created_s"] >= 0)
            made = timed["caller"].dropna().astype(int).value_counts()
            frame["created_others"] = frame["pid"].map(made).fillna(0).astype(int)
            flood_made = frame.loc[frame["flood_worker"], "created_s"]
            frame["last_made"] = frame["flood_worker"] & (frame["created_s"] == flood_made.max())
        rows.append(frame)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def df_worker_summary(meta: dict, events: pd.DataFrame) -> pd.DataFrame:
    """Per engine: workers timed (the flood's, for creation), median, p99, min and max duration
    (ns), other create_worker() calls left out (``others``), lost events, attach time (s), and the
    engines attached during the run: with both attached, each engine's durations include the
    other's probe handlers (see :func:`attached_note`)."""
    rows = []
    for engine in meta["engines"]:
        mine = events[events["engine"] == engine]
        values = durations_ns(meta, mine)
        traced = meta.get("tracers", {}).get(engine, {})
        rows.append({"engine": engine, "workers": len(values), "others": other_creations(meta, mine),
                     "p50_ns": values.median(),
                     "p99_ns": values.quantile(0.99), "min_ns": values.min(), "max_ns": values.max(),
                     "lost_events": traced.get("lost_events"), "attach_s": traced.get("attach_s"),
                     "attached": "+".join(meta["engines"])})
    return pd.DataFrame(rows).set_index("engine")


def summary(meta: dict, events: pd.DataFrame, engine: str | None = None) -> dict:
    """What the CLI prints and --save-json keeps for one engine (default: the first traced): its
    row of :func:`df_worker_summary`, the durations themselves and where they came from."""
    engine = engine or meta["engines"][0]
    row = df_worker_summary(meta, events).loc[engine]
    values = durations_ns(meta, events[events["engine"] == engine])
    traced = meta.get("tracers", {}).get(engine, {})
    return {"measurement": worker_kind(meta), "engine": engine, "kernel": meta.get("kernel_release"),
            "accel": meta.get("accel"), "probes": meta.get("probes"), "load": meta.get("load"),
            "count": int(row["workers"]), "others": int(row["others"]), "p50_ns": float(row["p50_ns"]) if len(values) else None,
            "p99_ns": float(row["p99_ns"]) if len(values) else None,
            "durations_ns": values.tolist(), "histogram_ns_log2": traced.get("histogram_ns_log2"),
            "lost_events": traced.get("lost_events"), "attach_s": traced.get("attach_s"),
            "engines_attached": meta.get("engines"), "truth": meta.get("truth")}


def read_summary(path: str | Path) -> dict:
    """A summary saved by ``--save-json``, or a one-line error saying why it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise WqkitError(f"{path}: {exc.strerror.lower()}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WqkitError(f"{path}: not JSON ({exc})") from None
    missing = SUMMARY_KEYS - data.keys() if isinstance(data, dict) else SUMMARY_KEYS
    if missing:
        raise WqkitError(f"{path}: not a summary saved by --save-json (missing {', '.join(sorted(missing))})")
    return data


def attached_note(meta: dict, events: pd.DataFrame) -> str:
    """What the attached engines add to the durations. Kprobe handlers on one function run one after
    another inside the same hit, so with two engines attached each engine's interval contains the
    other's handlers (measured against an ftrace kprobe: BCC +283 µs, bpftrace +51 µs under TCG):
    good for agreeing on pids and counts, biased for durations. Empty with one engine."""
    if len(meta["engines"]) < 2:
        return ""
    gap = df_engine_agreement(meta, events).get("bcc_minus_bpftrace_ns", pd.Series(dtype=float)).median()
    unit, scale = unit_for([abs(float(gap))] if pd.notna(gap) else [])
    gap_text = f"median bcc − bpftrace {gap / scale:.4g} {unit}" if pd.notna(gap) else "no worker seen by both"
    return (f"{' and '.join(meta['engines'])} attached at once: each duration includes the other engine's "
            f"probe handlers ({gap_text}); trace with one engine for durations")


def df_engine_agreement(meta: dict, events: pd.DataFrame) -> pd.DataFrame:
    """Worker by worker, the durations each engine measured and their difference (ns), when both
    traced the same load; a worker seen by one engine only has a missing value."""
    table = df_workers(meta, events).pivot(index="pid", columns="engine", values="duration_ns")
    if {"bpftrace", "bcc"} <= set(table.columns):
        table["bcc_minus_bpftrace"] = table["bcc"] - table["bpftrace"]
    return table.rename(columns=lambda name: f"{name}_ns").rename_axis(columns=None)


def _title(meta: dict, what: str, events: pd.DataFrame) -> str:
    accel = str(meta.get("accel")).upper()
    note = " (emulation timings)" if meta.get("accel") == "tcg" else ""
    attached = attached_note(meta, events)
    return (f"{what}\n{meta.get('kernel_release')} under {accel}{note}; traced by {meta.get('engine')}"
            + (f"\n{attached}" if attached else ""))


def _plot_histogram(durations: dict[str, np.ndarray], kind: str, title: str) -> Figure:
    """Histogram of durations (ns) by engine, on log-spaced bins."""
    values = np.concatenate(list(durations.values())) if durations else np.array([])
    unit, scale = unit_for([float(np.median(values))] if len(values) else [])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if len(values):
        edges = np.geomspace(max(values.min(), 1) / scale, values.max() / scale * 1.0001, 30)
        for engine, mine in durations.items():
            ax.hist(mine / scale, bins=edges, alpha=0.6, label=f"{engine} ({len(mine)})")
        log_scale(ax.xaxis)
        ax.legend()
    ax.set_xlabel(f"{_what(kind)} ({unit})")
    ax.set_ylabel("workers")
    fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(top=0.82)
    return fig


def plot_worker_durations(meta: dict, events: pd.DataFrame) -> Figure:
    """Histogram of the measured durations (:func:`durations_ns`, log-spaced bins), one colour per engine."""
    durations = {engine: durations_ns(meta, mine).to_numpy(dtype=float)
                 for engine, mine in events.groupby("engine", sort=False)}
    return _plot_histogram(durations, worker_kind(meta), _title(meta, _what(worker_kind(meta)), events))


def plot_summary(data: dict) -> Figure:
    """The histogram of a saved summary (``--save-json``), titled with kernel and accelerator."""
    tcg = " (emulation timings)" if data.get("accel") == "tcg" else ""
    title = (f"{_what(data['measurement'])}: {data['count']} workers, {data['engine']}\n{data.get('kernel')} "
             f"under {str(data.get('accel')).upper()}{tcg}")
    values = np.asarray(data["durations_ns"], dtype=float)
    return _plot_histogram({data["engine"]: values} if len(values) else {}, data["measurement"], title)


def plot_worker_arrivals(meta: dict, events: pd.DataFrame) -> Figure:
    """Creation: new workers over time since the flood began, per engine: when each worker's
    create_worker() call began (dashed, for runs that kept it) and when it ran its first item
    (solid). Workers the kernel made before the flood are left out."""
    workers = df_workers(meta, events)
    workers = workers[~(workers["created_s"] < 0)]
    fig, ax = plt.subplots(figsize=(8, 4))
    for (engine, mine), colour in zip(workers.groupby("engine", sort=False), plt.rcParams["axes.prop_cycle"]):
        for column, style, what in (("created_s", "--", "create_worker() began"), ("first_item_s", "-", "first item")):
            times = np.sort(mine[column].dropna().to_numpy())
            if len(times):
                ax.step(np.concatenate([[0], times]), np.arange(len(times) + 1), where="post", linestyle=style,
                        color=colour["color"], label=f"{engine}: {what}")
    ax.set_xlabel("seconds since the flood's first work item was queued")
    ax.set_ylabel("new workers")
    ax.legend()
    fig.suptitle(_title(meta, "Pool growth under the flood", events), fontsize=8)
    fig.subplots_adjust(top=0.82)
    return fig
