"""Tracing kworker creation and death in the lab, with bpftrace.

Creation: the load is the ``new_worker`` module's flood (``delay`` ms between
``nr_work_max`` sleeping items on one CPU's pool); the tracer times each
``create_worker()`` (entry → return), with the new worker's pid and pool, and
each new worker's first work item from the start of the flood.

Death: from the moment a worker is told to die (``set_worker_dying()``, or
the patched kernel's ``workqueue_worker_dying_start`` when present) to the
exit of its task (``sched_process_exit``, or ``workqueue_worker_dying_end``).
The trigger is ``destroy`` (the default: the ``wq_worker_death`` module's
unbound workqueue gets a pool of its own through a nice value no other
workqueue has, runs a few sleeping items so the pool grows, and is destroyed,
its pool and workers with it) or ``idle`` (the kernel's own culling of
workers idle for IDLE_WORKER_TIMEOUT, 5 minutes: slow, but the real thing).

Each run is a run directory like the experiments': ``meta.json`` (engine,
probe points, trigger, load parameters, kernel, accelerator, counts, lost
events, status), ``events.parquet`` (every event while within ``max_events``)
and ``trace.txt`` (the tracer's own output, its log2 histogram included).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from shlex import quote
from typing import Callable

import pandas as pd

from wqkit import kmod
from wqkit.errors import WqkitError
from wqkit.provenance import target_provenance, wqkit_provenance
from wqkit.run import RunDirectory, _iso
from wqkit.target import LabTarget, Target, make_target
from wqkit.trace import BPFTRACE_DIR

KINDS = ("creation", "die")
ENGINES = ("bpftrace",)
TRIGGERS = ("destroy", "idle")
TRACEFS = "/sys/kernel/tracing"
#: Seconds to wait for bpftrace to attach (about 55 s under TCG on a busy machine).
ATTACH_TIMEOUT = 300.0
MAX_EVENTS = 1_000_000
#: How long the idle trigger waits: the kernel's IDLE_WORKER_TIMEOUT (5 min) and a margin.
IDLE_WAIT = 330.0
LINE = re.compile(r"^(FLOOD|CREATE|FAILED|FIRST|DYING|DEAD) (.*)$")
HIST_LINE = re.compile(r"^\[(\S+), (\S+)[\])]\s+(\d+) \|")


def probe_points(target: Target, kind: str) -> tuple[Path, list[str]]:
    """The bpftrace program for ``kind`` on this kernel, and the probe points it uses."""
    if kind == "creation":
        return BPFTRACE_DIR / "worker_creation.bt", ["kprobe:create_worker", "kretprobe:create_worker",
                                                     "tracepoint:workqueue:workqueue_queue_work",
                                                     "tracepoint:workqueue:workqueue_execute_start"]
    patched = target.run(f"test -d {TRACEFS}/events/workqueue/workqueue_worker_dying_start").returncode == 0
    if patched:
        return BPFTRACE_DIR / "worker_death_tracepoints.bt", ["tracepoint:workqueue:workqueue_worker_dying_start",
                                                              "tracepoint:workqueue:workqueue_worker_dying_end"]
    if target.run("grep -qw set_worker_dying /proc/kallsyms").returncode:
        raise WqkitError(f"{target.release} has neither set_worker_dying() nor the dying tracepoints to probe")
    return BPFTRACE_DIR / "worker_death.bt", ["kprobe:set_worker_dying", "tracepoint:sched:sched_process_exit"]


def parse_trace(text: str, max_events: int = MAX_EVENTS) -> tuple[pd.DataFrame, dict, int, bool]:
    """Events, log2 histogram (bucket low bound -> count), lost events and whether events were truncated."""
    rows, hist, lost = [], {}, 0
    for line in text.splitlines():
        if match := LINE.match(line.strip()):
            kind, fields = match.group(1), [int(v) for v in match.group(2).split()]
            rows.append(_event(kind, fields))
        elif match := HIST_LINE.match(line.strip()):
            hist[_size(match.group(1))] = int(match.group(3))
        elif lost_match := re.search(r"Lost (\d+) events", line):
            lost += int(lost_match.group(1))
    truncated = len(rows) > max_events
    frame = pd.DataFrame(rows[:max_events], columns=["event", "pid", "pool", "ns"])
    return frame, hist, lost, truncated


def _event(kind: str, fields: list[int]) -> dict:
    """One output line as a row: event, pid, pool (or None), ns (a duration or a timestamp)."""
    if kind == "FLOOD":
        return {"event": kind, "pid": None, "pool": None, "ns": fields[0]}
    if kind in ("CREATE", "DYING"):
        return {"event": kind, "pid": fields[0], "pool": fields[1], "ns": fields[2]}
    if kind == "FAILED":
        return {"event": kind, "pid": None, "pool": fields[0], "ns": fields[1]}
    return {"event": kind, "pid": fields[0], "pool": None, "ns": fields[1]}     # FIRST, DEAD


def _size(text: str) -> int:
    """bpftrace's bucket bounds (512, 1K, 4M) as integers."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def kworkers(target: Target) -> set[int]:
    """The pids of the target's kworker tasks."""
    out = target.run("for d in /proc/[0-9]*; do c=$(cat $d/comm 2>/dev/null) && "
                     "case $c in kworker/*) echo ${d#/proc/};; esac; done", check=True).stdout
    return {int(pid) for pid in out.split()}


def trace_workers(kind: str = "creation", *, engine: str = "bpftrace", trigger: str = "destroy", delay: int = 100,
                  nr_work_max: int = 500, hold_ms: int = 1000, workers: int = 8, target: Target | None = None,
                  target_name: str = "lab", out: Path = Path("runs"), progress: Callable[[str], None] = print,
                  **lab_options) -> Path:
    """Trace worker creation or death under its load; return the run directory.

    A run that lost events, or that failed or was interrupted, is written
    and marked failed (with what it collected) and raises.
    """
    if kind not in KINDS:
        raise WqkitError(f"unknown measurement {kind!r}: choose one of {', '.join(KINDS)}")
    if engine not in ENGINES:
        raise WqkitError(f"unknown engine {engine!r}: this wqkit traces with {', '.join(ENGINES)} "
                         "(BCC is not wired yet)")
    if trigger not in TRIGGERS:
        raise WqkitError(f"unknown trigger {trigger!r}: choose one of {', '.join(TRIGGERS)}")
    load = {"delay": delay, "nr_work_max": nr_work_max, "hold_ms": hold_ms} if kind == "creation" \
        else {"trigger": trigger, "workers": workers}
    kmod.module_spec("wq_new_worker").insmod_args({k: v for k, v in load.items() if k != "hold_ms"}
                                                  if kind == "creation" else {})
    if kind == "die" and not 1 <= workers <= 64:
        raise WqkitError(f"workers={workers} is out of range (1..64)")
    run_dir = RunDirectory(Path(out), f"trace-workers-{kind}")
    progress = run_dir.logged(progress)
    started = time.time()
    meta: dict = {"experiment": f"trace_workers_{kind}", "engine": engine, "load": load, "status": "failed",
                  "error": "did not finish", "wqkit": wqkit_provenance(), "started_at": _iso(started)}
    with run_dir.recording(meta, started, progress), _target(target, target_name, lab_options) as tgt:
        meta.update(target_provenance(tgt))
        program, probes = probe_points(tgt, kind)
        meta["program"], meta["probes"] = program.name, probes
        text, meta["truth"] = _traced(tgt, kind, program, load, run_dir.path, progress)
        (run_dir.path / "trace.txt").write_text(text)
        events, hist, lost, truncated = parse_trace(text)
        events.to_parquet(run_dir.path / "events.parquet", index=False)
        meta["histogram_ns_log2"] = hist
        meta["counts"] = {name: int((events["event"] == name).sum()) for name in sorted(set(events["event"]))}
        meta["lost_events"], meta["events_truncated"] = lost, truncated
        if lost:
            raise WqkitError(f"the tracer lost {lost} events")
        meta["status"], meta["error"] = "ok", None
    return run_dir.final


class _target:
    """An open target given by the caller, or one made (and closed) here."""

    def __init__(self, target: Target | None, name: str, lab_options: dict) -> None:
        self.given, self.name, self.lab_options, self.made = target, name, lab_options, None

    def __enter__(self) -> Target:
        if self.given is not None:
            return self.given
        self.made = make_target(self.name, **(self.lab_options if self.name == "lab" else {}))
        return self.made.__enter__()

    def __exit__(self, *exc_info) -> None:
        if self.made is not None:
            self.made.__exit__(*exc_info)


def _traced(target: Target, kind: str, program: Path, load: dict, dest: Path,
            progress: Callable[[str], None]) -> tuple[str, dict]:
    """Start bpftrace, run the load, stop bpftrace (always); its output and what the guest saw."""
    target.run(f"mountpoint -q {TRACEFS} || mount -t tracefs tracefs {TRACEFS}; "
               "mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
    output, pid_file = "/tmp/wqkit-trace.out", "/tmp/wqkit-trace.pid"
    argument = "new_worker" if kind == "creation" else ""
    ko = kmod.build(target, progress) / ("wq_new_worker.ko" if kind == "creation" else "wq_worker_death.ko")
    progress(f"starting bpftrace {program.name} (about a minute to attach under TCG)")
    target.run(f"rm -f {output}; setsid bpftrace {quote(str(program))} {argument} > {output} 2>&1 < /dev/null & "
               f"echo $! > {pid_file}", check=True)
    try:
        _wait_attached(target, output)
        before = kworkers(target)
        if kind == "creation":
            args = " ".join(f"{k}={v}" for k, v in load.items())
            progress(f"flooding CPU 0's pool: wq_new_worker {args}")
            with kmod.loaded(target, "wq_new_worker", load, progress=progress):
                target.run("while grep -q state=running /sys/kernel/debug/wqkit/new_worker/stats; "
                           "do sleep 0.5; done", timeout=3600, check=True)
            truth = {"new_kworkers": sorted(kworkers(target) - before)}
        else:
            truth = _trigger_death(target, ko, load, progress, before)
    finally:
        # bpftrace prints its maps and detaches on SIGINT: minutes under TCG on a busy machine.
        target.run(f"kill -INT $(cat {pid_file}) 2>/dev/null; "
                   f"while kill -0 $(cat {pid_file}) 2>/dev/null; do sleep 0.5; done", timeout=600)
        text = target.run(f"cat {output}").stdout
    return text, truth


def _wait_attached(target: Target, output: str) -> None:
    deadline = time.monotonic() + ATTACH_TIMEOUT
    while "Attaching" not in (text := target.run(f"cat {output}").stdout):
        if "ERROR" in text or target.run(f"pgrep -x bpftrace").returncode:
            raise WqkitError(f"bpftrace did not start: {(text.strip().splitlines() or ['no output'])[-1]}")
        if time.monotonic() > deadline:
            raise WqkitError(f"bpftrace did not attach within {ATTACH_TIMEOUT:g} s")
        time.sleep(2)
    time.sleep(1)


def _trigger_death(target: Target, ko: Path, load: dict, progress: Callable[[str], None],
                   before: set[int]) -> dict:
    """Make workers die (destroy their pool, or wait for idle culling); the pids that went away."""
    if load["trigger"] == "idle":
        progress(f"waiting {IDLE_WAIT:g} s for the kernel to cull idle workers (IDLE_WORKER_TIMEOUT)")
        time.sleep(IDLE_WAIT)
        return {"kworkers_gone": sorted(before - kworkers(target))}
    target.run(f"insmod {quote(str(ko))}", check=True)
    try:
        # A nice value no other workqueue uses gives wqkit_death an unbound pool of its own.
        target.run("echo -7 > /sys/devices/virtual/workqueue/wqkit_death/nice", check=True)
        target.run(f"echo {load['workers']} > /sys/module/wq_worker_death/parameters/run", check=True, timeout=600)
        alive = kworkers(target)
        progress(f"destroying wqkit_death's pool ({len(alive - before)} workers created for it)")
    finally:
        target.run("rmmod wq_worker_death", check=True, timeout=300)
    time.sleep(2)
    return {"kworkers_created": sorted(alive - before), "kworkers_gone": sorted(alive - kworkers(target))}


def load_trace(path: Path) -> tuple[dict, pd.DataFrame]:
    """A traced run's meta.json and events."""
    path = Path(path)
    return json.loads((path / "meta.json").read_text()), pd.read_parquet(path / "events.parquet")


def durations_ns(events: pd.DataFrame, kind: str) -> pd.Series:
    """The measured durations: create_worker() calls (creation), told-to-die → exit (die)."""
    return events.loc[events["event"] == ("CREATE" if kind == "creation" else "DEAD"), "ns"].astype("int64")


def summary(meta: dict, events: pd.DataFrame) -> dict:
    """What the CLI prints and --save-json keeps: counts, durations and their percentiles."""
    kind = "creation" if meta["experiment"].endswith("creation") else "die"
    values = durations_ns(events, kind)
    return {"measurement": kind, "engine": meta.get("engine"), "kernel": meta.get("kernel_release"),
            "accel": meta.get("accel"), "probes": meta.get("probes"), "load": meta.get("load"),
            "count": int(len(values)), "p50_ns": float(values.median()) if len(values) else None,
            "p99_ns": float(values.quantile(0.99)) if len(values) else None,
            "durations_ns": values.tolist(), "histogram_ns_log2": meta.get("histogram_ns_log2"),
            "lost_events": meta.get("lost_events"), "truth": meta.get("truth")}


def plot_durations(data: dict):
    """Histogram (log-spaced bins) of the measured durations, titled with kernel and accelerator."""
    import matplotlib.pyplot as plt
    import numpy as np

    from wqkit.analysis.units import unit_for

    values = np.asarray(data["durations_ns"], dtype=float)
    unit, scale = unit_for([float(np.median(values))] if len(values) else [])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if len(values):
        edges = np.geomspace(max(values.min(), 1) / scale, values.max() / scale * 1.0001, 40)
        ax.hist(values / scale, bins=edges)
        ax.set_xscale("log")
    what = "create_worker() duration" if data["measurement"] == "creation" else "told to die → task exit"
    ax.set_xlabel(f"{what} ({unit})")
    ax.set_ylabel("workers")
    tcg = " — TCG: emulation timings" if data.get("accel") == "tcg" else ""
    fig.suptitle(f"{what}: {data['count']} workers, {data['engine']}\n{data.get('kernel')} under "
                 f"{str(data.get('accel')).upper()}{tcg}", fontsize=8)
    return fig
