"""Tracing kworker creation and death, with bpftrace, BCC or both at once.

Creation: the load is the ``new_worker`` module's flood (``delay`` ms between
``nr_work_max`` sleeping items on one CPU's pool); the tracer times each
``create_worker()`` (entry → return), with the new worker's pid and pool, and
each new worker's first work item from the start of the flood.

Death: from the moment a worker is told to die (``set_worker_dying()``, or
the patched kernel's ``workqueue_worker_dying_start`` when present) to the
exit of its task (``sched_process_exit``, or ``workqueue_worker_dying_end``).
Either trigger starts alike: the ``wq_worker_death`` module's unbound
workqueue gets a pool of its own through a nice value no other workqueue has,
and runs a few sleeping items at once so that the pool grows. Then ``destroy``
(the default) destroys the workqueue, its pool and workers with it; ``idle``
leaves the workers idle until the kernel culls the surplus
(IDLE_WORKER_TIMEOUT, 5 minutes: slow, but the real path, ``idle_cull_fn()``),
fails if none was culled, and then destroys the pool and its last workers.

Its parameters are declared once, in ``trace_workers.toml`` beside this file.
Each run is a run directory like the experiments': ``meta.json`` (engines,
probe points, trigger, load parameters, kernel, accelerator; per engine its
attach time, counts, lost events and log2 histogram; status),
``events.parquet`` (every event while within ``max_events``, by engine) and
``trace-ENGINE.txt`` (each tracer's own output).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from wqkit.experiments import kmod
from wqkit.inspect.kworkers import kworkers
from wqkit.errors import CommandTimeout, WqkitError
from wqkit.runs.kinds import RunKind, run_kind
from wqkit.runs.lifecycle import recorded_run
from wqkit.runs.spec import Param
from wqkit.target import Target
from wqkit.trace.engine import (TRACEFS, Tracing, TracerProgram, check_engines, check_lost, check_root, keep_outputs,
                                run_tracer)

NAME = "trace_workers"
MAX_EVENTS = 1_000_000
#: How long the idle trigger waits at most: the kernel's IDLE_WORKER_TIMEOUT (5 min) and a margin.
IDLE_WAIT = 330.0
#: Idle workers a pool keeps when nothing runs (too_many_workers(): nr_idle > 2).
IDLE_WORKERS_KEPT = 2
COLUMNS = ["event", "pid", "pool", "ns", "start_ns", "caller"]
LINE = re.compile(r"^(FLOOD|QUEUED|CREATE|FAILED|FIRST|DYING|DEAD) (.*)$")


def worker_program(target: Target, kind: str) -> TracerProgram:
    """The tracer program for ``kind`` on this kernel, with the probe points it uses."""
    if kind == "creation":
        return TracerProgram("worker_creation", ["kprobe:create_worker", "kretprobe:create_worker",
                                                 "tracepoint:workqueue:workqueue_queue_work",
                                                 "tracepoint:workqueue:workqueue_execute_start"],
                             {"FLOOD_WQ": "new_worker"})
    if target.exists(f"{TRACEFS}/events/workqueue/workqueue_worker_dying_start/format"):
        return TracerProgram("worker_death_tracepoints", ["tracepoint:workqueue:workqueue_worker_dying_start",
                                                          "tracepoint:workqueue:workqueue_worker_dying_end"])
    if target.run("grep -qw set_worker_dying /proc/kallsyms").returncode:
        raise WqkitError(f"{target.release} has neither set_worker_dying() nor the dying tracepoints to probe")
    return TracerProgram("worker_death", ["kprobe:set_worker_dying", "tracepoint:sched:sched_process_exit"])


def parse_trace(text: str, max_events: int = MAX_EVENTS) -> tuple[pd.DataFrame, bool]:
    """A tracer's events, and whether there were more than ``max_events``."""
    rows = []
    for line in text.splitlines():
        if match := LINE.match(line.strip()):
            kind, fields = match.group(1), [int(v) for v in match.group(2).split()]
            rows.append(_event(kind, fields))
    return pd.DataFrame(rows[:max_events], columns=COLUMNS), len(rows) > max_events


def _event(kind: str, fields: list[int]) -> dict:
    """One output line as a row: event, pid, pool (or None), ns (a duration or a timestamp) and,
    for a timed call (CREATE, FAILED), start_ns: when it began, and caller: the task that made
    it (the pool's manager, a worker of that pool; absent from traces taken before it was kept)."""
    if kind in ("FLOOD", "QUEUED"):
        return {"event": kind, "pid": None, "pool": None, "ns": fields[0]}
    if kind == "CREATE":
        return {"event": kind, "pid": fields[0], "pool": fields[1], "ns": fields[2], "start_ns": fields[3],
                "caller": fields[4] if len(fields) > 4 else None}
    if kind == "FAILED":
        return {"event": kind, "pid": None, "pool": fields[0], "ns": fields[1], "start_ns": fields[2],
                "caller": fields[3] if len(fields) > 3 else None}
    if kind == "DYING":
        return {"event": kind, "pid": fields[0], "pool": fields[1], "ns": fields[2]}
    return {"event": kind, "pid": fields[0], "pool": None, "ns": fields[1]}     # FIRST, DEAD


def declaration() -> RunKind:
    """This tracer's declaration (trace_workers.toml)."""
    return run_kind(NAME)


def flood_params() -> tuple[Param, ...]:
    """The new_worker parameters the creation trace's flood takes: all but its CPU (CPU 0's pool,
    whose workers the tracer and the truth listing follow)."""
    return declaration().load_options({})


def trace_workers(kind: str | None = None, *, engine: str | list[str] | None = None, trigger: str | None = None,
                  load: Mapping[str, object] | None = None, workers: int | None = None,
                  timeout: float | None = None, target: Target | None = None, target_name: str = "lab",
                  out: Path = Path("runs"), progress: Callable[[str], None] = print,
                  annotations: Mapping[str, object] | None = None, **lab_options) -> Path:
    """Trace worker creation or death under its load; return the run directory.

    Every parameter left None takes its declared default (trace_workers.toml).
    ``engine`` is bpftrace, bcc, both (traced at once, on the same load), or a
    list. Creation's load is the new_worker module's flood: ``load`` holds its
    parameters (``delay``, ``nr_work_max``, ``hold_ms``). Death's is ``workers``
    workers grown on a pool of their own, then made to die by ``trigger``. A run
    that lost events, timed out (``timeout`` seconds of load), failed or was
    interrupted is written and marked failed, with what the tracers collected, and
    raises. ``annotations`` go into meta.json as they are (a study's point).
    """
    return run_tracer(declaration(), {"kind": kind, "engine": engine, "trigger": trigger, "workers": workers,
                                      "timeout": timeout, **(load or {})},
                      target=target, target_name=target_name, out=out, progress=progress, annotations=annotations,
                      **lab_options)


def run(declared: RunKind, own: Mapping[str, object], flood: Mapping[str, object], *,
        target: Target | None = None, target_name: str = "lab", out: Path = Path("runs"),
        progress: Callable[[str], None] = print, annotations: Mapping[str, object] | None = None,
        graph: object = None, **lab_options) -> Path:
    """The registry's runner: one run with checked parameters (``own``: the tracer's, ``flood``:
    new_worker's as given)."""
    kind, engines, timeout = str(own["kind"]), check_engines(own["engine"]), float(own["timeout"])
    load = {**{p.name: p.default for p in flood_params()}, **flood} if kind == "creation" else \
        {"trigger": own["trigger"], "workers": own["workers"]}
    meta: dict = {"kind": declared.name, "experiment": f"{NAME}_{kind}", "engine": "+".join(engines),
                  "engines": engines, "load": load, **(annotations or {})}
    with recorded_run(Path(out), f"trace-workers-{kind}", meta, target=target, target_name=target_name,
                      progress=progress, **lab_options) as run:
        check_root(run.target)
        program = worker_program(run.target, kind)
        meta["program"], meta["probes"] = program.name, program.probes
        tracing = Tracing(run.target, engines, program, run.progress)
        # Listed before the tracers attach too: a kworker culled while they attach is traced dying
        # and is gone from the listing after it, yet it was no worker of the load.
        before_attach = set(kworkers(run.target))
        try:
            with tracing:
                meta["truth"] = _run_load(run.target, kind, load, timeout, run.progress, before_attach)
        finally:
            events = keep_outputs(tracing, run.path, meta, parse_trace)
            events.to_parquet(run.path / "events.parquet", index=False)
        check_lost(meta)
    return run.final


def _run_load(target: Target, kind: str, load: dict, timeout: float, progress: Callable[[str], None],
              before_attach: set[int]) -> dict:
    """Run the load the tracers watch; what the guest saw (kworkers that appeared or went away).
    ``before_attach``: the kworkers listed before the tracers attached."""
    # The tracers attach before this listing: a kworker the kernel creates meanwhile is traced and
    # listed, so it is not the load's; one idle for IDLE_WORKER_TIMEOUT may die at any time, and
    # is in one of the two listings.
    before = before_attach | set(kworkers(target))
    listed = {"kworkers_before": sorted(before)}
    if kind == "die":
        return listed | _trigger_death(target, load, progress, before)
    args = " ".join(f"{k}={v}" for k, v in load.items())
    progress(f"flooding CPU 0's pool: wq_new_worker {args}")
    with kmod.loaded(target, "wq_new_worker", load, progress=progress):
        listed["flood_pool"] = flood_pool(target)
        try:
            target.run("while grep -q state=running /sys/kernel/debug/wqkit/new_worker/stats; do sleep 0.5; done",
                       timeout=timeout)
        except CommandTimeout:
            raise WqkitError(f"the flood did not finish within {timeout:g} s") from None
    return listed | {"new_kworkers": sorted(set(kworkers(target)) - before)}


def flood_pool(target: Target) -> int:
    """The pool the new_worker module floods, as the kernel says: the pool of its workqueue's
    pool_workqueue on the CPU it queues on."""
    from wqkit.inspect.snapshot import take_snapshot
    from wqkit.inspect.sources import target_program

    cpu = int(target.read("/sys/module/wq_new_worker/parameters/cpu"))
    with target_program(target) as prog:
        snap = take_snapshot(prog)
    pools = {pool.id: pool for pool in snap.pools}
    flooded = [pwq.pool_id for wq in snap.workqueues if wq.name == "new_worker" for pwq in wq.pwqs
               if pools[pwq.pool_id].cpu == cpu]
    if len(flooded) != 1:
        raise WqkitError(f"new_worker's pool on CPU {cpu} not found in the kernel ({flooded})")
    return flooded[0]


def _trigger_death(target: Target, load: dict, progress: Callable[[str], None], before: set[int]) -> dict:
    """Give wqkit_death's pool surplus workers, then make them die: destroy the pool (unloading
    the module), or leave them idle until the kernel culls them; the pids created for it,
    culled, and gone."""
    truth: dict = {}
    with kmod.loaded(target, "wq_worker_death", {}, progress=progress):
        # A nice value no other workqueue uses gives wqkit_death an unbound pool of its own.
        target.write("/sys/devices/virtual/workqueue/wqkit_death/nice", "-7")
        target.write("/sys/module/wq_worker_death/parameters/run", str(load["workers"]), timeout=600)
        created = set(kworkers(target)) - before
        truth["kworkers_created"] = sorted(created)
        if load["trigger"] == "idle":
            truth["kworkers_culled"] = sorted(_wait_for_culling(target, created, progress))
        progress(f"destroying wqkit_death's pool ({len(created)} workers created for it)")
    time.sleep(2)
    truth["kworkers_gone"] = sorted(set(truth["kworkers_created"]) - set(kworkers(target)))
    return truth


def _wait_for_culling(target: Target, created: set[int], progress: Callable[[str], None]) -> set[int]:
    """Wait (at most IDLE_WAIT) until the kernel has culled the pool's surplus idle workers: it
    keeps IDLE_WORKERS_KEPT of them. The pids culled; an error when none was."""
    progress(f"{len(created)} workers idle on wqkit_death's pool: waiting up to {IDLE_WAIT:g} s for the kernel "
             "to cull the surplus (IDLE_WORKER_TIMEOUT, 5 minutes)")
    deadline = time.monotonic() + IDLE_WAIT
    culled: set[int] = set()
    while time.monotonic() < deadline and len(created - culled) > IDLE_WORKERS_KEPT:
        time.sleep(5)
        culled = created - set(kworkers(target))
    if not culled:
        raise WqkitError(f"the kernel culled none of the {len(created)} idle workers within {IDLE_WAIT:g} s")
    progress(f"{len(culled)} idle workers culled")
    return culled
