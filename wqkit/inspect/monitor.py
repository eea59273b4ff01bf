"""``wqkit monitor``: snapshots at an interval, printed in the seed's layout, JSON or CSV."""

from __future__ import annotations

import csv
import difflib
import json
import time
from typing import Callable, TextIO

from wqkit.errors import WqkitError
from wqkit.inspect.model import PWQ_STATS, Snapshot, WorkqueueInfo
from wqkit.inspect.text import iteration_text, scenario_lines

FORMATS = ("text", "json", "csv")


def select_workqueues(snap: Snapshot, names: list[str]) -> list[WorkqueueInfo]:
    """The named workqueues (all when none is named); an unknown name is a one-line error."""
    if not names:
        return snap.workqueues
    known = list(dict.fromkeys(wq.name for wq in snap.workqueues))
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
            hint = f" (close: {', '.join(close)})" if close else f" ({len(known)} workqueues; run without a name to list them)"
            raise WqkitError(f"unknown workqueue {name!r}{hint}")
    return [wq for wq in snap.workqueues if wq.name in names]


def monitor(take: Callable[[], Snapshot], out: TextIO, names: list[str] | None = None, interval: float = 0.0,
            max_iterations: int = 0, scenario: str = "NORMAL", verbose: bool = False, active_only: bool = False,
            fmt: str = "text") -> int:
    """Print snapshots from ``take()`` every ``interval`` s; return the number printed.

    ``interval`` 0 prints once; ``max_iterations`` 0 means until interrupted.
    """
    if fmt not in FORMATS:
        raise WqkitError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    previous: Snapshot | None = None
    writer = None
    iteration = 0
    due = None   # when the next snapshot is due; counted from the first one, which may load debug info
    while True:
        snap = take()
        due = time.monotonic() if due is None else due
        workqueues = select_workqueues(snap, names or [])
        if fmt == "text":
            lines = scenario_lines(snap, scenario, workqueues, verbose, active_only, previous)
            out.write(iteration_text(iteration, lines, scenario))
            if snap.paused_seconds is not None:
                out.write(f"(consistent read: the guest was paused {snap.paused_seconds * 1000:.1f} ms)\n")
        elif fmt == "json":
            data = snap.to_dict()
            data["workqueues"] = [workqueue_record(w, wq) for w, wq in zip(data["workqueues"], snap.workqueues)
                                  if wq in workqueues]
            data["iteration"] = iteration
            data["rates"] = rates(previous, snap, workqueues)
            out.write(json.dumps(data) + "\n")
        else:
            positions = [i for i, wq in enumerate(snap.workqueues) if wq in workqueues]
            table = snap.df_workqueues().iloc[positions].reset_index()
            table.insert(0, "time", snap.time)
            table.insert(0, "iteration", iteration)
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(table.columns))
                writer.writeheader()
            writer.writerows(table.to_dict(orient="records"))
        out.flush()
        iteration += 1
        previous = snap
        if interval <= 0 or (max_iterations and iteration >= max_iterations):
            return iteration
        due = max(due + interval, time.monotonic())
        time.sleep(max(0.0, due - time.monotonic()))     # the clock moved on since due was set


def workqueue_record(data: dict, wq: WorkqueueInfo) -> dict:
    """A workqueue's JSON record: its fields, its totals over the pwqs, stats named."""
    stats = wq.stats
    return {**data, "nr_active": wq.nr_active, "stats": None if stats is None else stats._asdict(),
            "pwqs": [{**pwq, "stats": None if pwq["stats"] is None else dict(zip(PWQ_STATS, pwq["stats"]))}
                     for pwq in data["pwqs"]]}


def rates(previous: Snapshot | None, snap: Snapshot, workqueues: list[WorkqueueInfo]) -> dict[str, dict]:
    """Work items started and completed per second since ``previous``, per workqueue."""
    if previous is None or snap.time <= previous.time:
        return {}
    dt = snap.time - previous.time
    result = {}
    for wq in workqueues:
        occurrence = snap.occurrence(wq)
        before = previous.workqueue(wq.name, occurrence)
        if before is not None and wq.stats and before.stats:
            key = wq.name if occurrence == 0 else f"{wq.name}#{occurrence}"
            result[key] = {"started_per_s": (wq.started - before.started) / dt,
                               "completed_per_s": (wq.completed - before.completed) / dt}
    return result
