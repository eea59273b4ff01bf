"""Queue → execute latency of work items, from the kernel's workqueue tracepoints.

For every work item queued on the chosen workqueues (all of them when none
is named), the tracer records the times of ``workqueue_queue_work``,
``workqueue_activate_work``, ``workqueue_execute_start`` and
``workqueue_execute_end``: one row per executed item, with its work function
(and its symbol), the CPU and worker that ran it and the
workqueue's name. It runs for ``duration`` seconds or, with ``during``,
around one experiment in the same session, so that the module's own samples
and the tracepoints' can be compared item by item (:func:`compare_with_samples`).

A run directory holds ``meta.json`` (engines, probe points, workqueues,
per-engine attach time, counts, losses, histogram; the experiment's run
directory when there is one, inside this one), ``items.parquet`` and each
tracer's output (analysed by wqkit.analysis.latency). Work functions are named by the tracers as they print
(bpftrace's ``ksym``, BCC's ``BPF.ksym``), while their module is loaded. Its parameters are
declared once, in ``trace_latency.toml`` beside this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from wqkit.errors import WqkitError
from wqkit.experiments.graph import TaskGraph
from wqkit.runs.kinds import RunKind, run_kind
from wqkit.runs.lifecycle import recorded_run
from wqkit.runs.spec import experiment
from wqkit.target import Target
from wqkit.trace.declared import run_load
from wqkit.trace.engine import (Tracing, TracerProgram, check_engines, check_lost, check_root, keep_outputs,
                                run_tracer)

NAME = "trace_latency"
PROBES = [f"tracepoint:workqueue:workqueue_{name}" for name in
          ("queue_work", "activate_work", "execute_start", "execute_end")]
COLUMNS = ["work", "function", "queue_ns", "activate_ns", "start_ns", "end_ns", "cpu", "pid", "symbol",
           "workqueue"]


def declaration() -> RunKind:
    """This tracer's declaration (trace_latency.toml)."""
    return run_kind(NAME)


def latency_program(workqueues: list[str] | tuple[str, ...], max_pending: int | None = None) -> TracerProgram:
    """The queue_latency program for these workqueues (all when empty), holding at most
    ``max_pending`` items between queue and execution end (more are lost, counted; None: the
    declared default): both checked against the declaration. Its arguments WQ0..WQ(max - 1) filter on the names."""
    declared = declaration()
    workqueues = declared.param("workqueues").check(NAME, workqueues)
    max_pending = declared.param("max_pending").check(NAME, declared.default("max_pending")
                                                       if max_pending is None else max_pending)
    names = list(workqueues) or ["*"]
    names += ["-"] * (declared.param("workqueues").max - len(names))
    return TracerProgram("queue_latency", PROBES, {f"WQ{i}": name for i, name in enumerate(names)}, max_pending)


def parse_items(text: str) -> tuple[pd.DataFrame, bool]:
    """The ITEM lines of a tracer's output as a DataFrame (one row per executed work item)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("ITEM "):
            fields = line.split(" ", 10)
            rows.append([int(v) for v in fields[1:9]] + [fields[9]] + [fields[10].strip() if len(fields) > 10 else ""])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.assign(event="ITEM"), False


def trace_latency(workqueues: list[str] | tuple[str, ...] = (), *, engine: str | list[str] | None = None,
                  during: str | None = None, values: Mapping[str, object] | None = None,
                  graph: TaskGraph | None = None, duration: float | None = None, max_pending: int | None = None,
                  timeout: float | None = None,
                  target: Target | None = None, target_name: str = "lab", out: Path = Path("runs"),
                  progress: Callable[[str], None] = print, annotations: Mapping[str, object] | None = None,
                  **lab_options) -> Path:
    """Trace queue → execute latency; return the run directory.

    Every parameter left None takes its declared default (trace_latency.toml).
    With ``during`` (an experiment name and its ``values``), the tracers run
    around that experiment, whose run directory is made inside this one, and
    ``workqueues`` defaults to the experiment's own (``graph``: its task
    graph, for kserver; ``timeout``: the seconds it may take); otherwise they run for
    ``duration`` seconds. ``max_pending`` sizes the tracers' maps: items queued
    and not yet done beyond it are lost. Lost events or a failed experiment mark the run
    failed (what was collected is kept) and raise. ``annotations`` go into meta.json as they
    are (a study's point).
    """
    return run_tracer(declaration(), {"workqueues": workqueues, "engine": engine, "during": during,
                                      "duration": duration, "max_pending": max_pending, "timeout": timeout,
                                      **(values or {})},
                      graph=graph, target=target, target_name=target_name, out=out, progress=progress,
                      annotations=annotations, **lab_options)


def run(declared: RunKind, own: Mapping[str, object], values: Mapping[str, object], *,
        graph: TaskGraph | None = None, target: Target | None = None, target_name: str = "lab",
        out: Path = Path("runs"), progress: Callable[[str], None] = print,
        annotations: Mapping[str, object] | None = None, **lab_options) -> Path:
    """The registry's runner: one run with checked parameters (``own``: the tracer's, ``values``:
    its ``during`` experiment's as given)."""
    engines, during = check_engines(own["engine"]), str(own["during"]) or None
    workqueues = list(own["workqueues"]) or ([during] if during else [])
    max_pending, duration, timeout = int(own["max_pending"]), float(own["duration"]), float(own["timeout"])
    program = latency_program(workqueues, max_pending)
    meta: dict = {"kind": declared.name, "experiment": NAME, "engine": "+".join(engines), "engines": engines,
                  "workqueues": workqueues or "all", "max_pending": max_pending, "program": program.name,
                  "probes": program.probes, "during": during, **(annotations or {})}
    with recorded_run(Path(out), "trace-latency", meta, target=target, target_name=target_name,
                      progress=progress, before_boot=lambda opened: declared.check_release(own, values, opened.release),
                      **lab_options) as run:
        check_root(run.target)
        tracing = Tracing(run.target, engines, program, run.progress)
        try:
            with tracing:
                run_load(run, meta, during, values, duration, timeout, graph)
        finally:
            items = keep_outputs(tracing, run.path, meta, parse_items)
            items.drop(columns="event").to_parquet(run.path / "items.parquet", index=False)
        check_lost(meta)
        if during:
            check_items(meta, items, json.loads((run.path / meta["experiment_run"] / "meta.json").read_text()))
    return run.final


def check_items(meta: dict, items: pd.DataFrame, experiment_meta: dict) -> None:
    """Around an experiment whose samples are its work items one by one (queue_to_execution), every
    engine must have traced each of them on its workqueue: the counts go into ``meta["items"]``, and
    a tracer that saw more or fewer fails the run, saying how many."""
    if not experiment(experiment_meta["experiment"]).queue_to_execution:
        return
    expected = int(experiment_meta["samples"]["collected"])
    traced = {engine: int(((items["engine"] == engine) & (items["workqueue"] == meta["during"])).sum())
              for engine in meta["engines"]}
    meta["items"] = {"expected": expected, "traced": traced}
    wrong = {engine: n for engine, n in traced.items() if n != expected}
    if wrong:
        raise WqkitError(f"the tracers' items are not the experiment's {expected} work items: "
                         + ", ".join(f"{engine} traced {n}" for engine, n in wrong.items()))
