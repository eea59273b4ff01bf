"""Queue → execute latency, as traced by ``wqkit trace latency`` (bpftrace, BCC or both).

A traced run is its ``meta.json`` and ``items.parquet`` (see wqkit.trace.latency),
loaded by :func:`wqkit.analysis.load.load_run`: one row per executed work item
with the tracepoints' times in ns.
"""

from __future__ import annotations

import pandas as pd

from wqkit.errors import WqkitError
from wqkit.runs.spec import experiment


def df_latency(items: pd.DataFrame, by: str = "workqueue") -> pd.DataFrame:
    """Per engine and ``by`` (workqueue or symbol): items, and median/p99 of queue→start, queue→activate
    (time inactive, held back by max_active) and start→end (execution), in ns."""
    frame = items.assign(queue_to_start=items["start_ns"] - items["queue_ns"],
                         inactive=(items["activate_ns"] - items["queue_ns"]).where(items["activate_ns"] > 0),
                         execution=items["end_ns"] - items["start_ns"])
    grouped = frame.groupby(["engine", by])
    table = grouped.size().rename("items").to_frame()
    for column in ("queue_to_start", "inactive", "execution"):
        table[f"{column}_p50_ns"] = grouped[column].median()
        table[f"{column}_p99_ns"] = grouped[column].quantile(0.99)
    return table.reset_index().sort_values(["engine", "items"], ascending=[True, False])


def not_compared(during: str) -> str | None:
    """Why the samples of experiment ``during`` are not compared item by item with the
    tracepoints (None when they are: its samples are one item's queue → execution)."""
    exp = experiment(during)
    if exp.queue_to_execution:
        return None
    return f"{exp.name}'s samples measure {exp.measures}, not one item's queue → execution: " \
        "not compared with the tracepoints"


def compare_with_samples(items: pd.DataFrame, samples: pd.DataFrame, tsc_khz: float,
                         engine: str | None = None) -> pd.DataFrame:
    """The module's and the tracepoints' latency of the same work items, item by item.

    The experiment's runner queues its items one after the other, so the
    k-th item queued on its workqueue is the sample of ``seq`` k. ``module_ns``
    spans rdtsc before queue_work_on() to the first instruction of the work
    function, which contains the tracepoints' queue_work → execute_start
    (``tracepoint_ns``): ``module_ns >= tracepoint_ns`` up to clock granularity.
    """
    chosen = items if engine is None else items[items["engine"] == engine]
    traced = chosen.sort_values("queue_ns").reset_index(drop=True)
    ordered = samples.sort_values("seq").reset_index(drop=True)
    if len(traced) != len(ordered):
        raise WqkitError(f"{len(traced)} traced items against {len(ordered)} module samples: not the same items")
    return pd.DataFrame({"seq": ordered["seq"],
                         "module_ns": (ordered["t1"] - ordered["t0"]) * 1e6 / tsc_khz,
                         "tracepoint_ns": traced["start_ns"] - traced["queue_ns"],
                         "cpu": traced["cpu"], "cpu_exec": ordered["cpu_exec"]})
