"""The experiments wqkit runs, and how their options map to module parameters.

Each experiment is one module of ``modules/``. Its command-line options are
declared here once; ``wqkit run`` and the Python API both go through
:func:`module_params`, and the module checks every value again at load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from wqkit.errors import WqkitError

#: wqkit's own workqueue flag bits (modules/wqkit_experiment.h).
WQ_FLAGS = {"unbound": 0x1, "highpri": 0x2, "cpu_intensive": 0x4}


def parse_wq_flags(text: str | int) -> int:
    """``"unbound,highpri"`` (or ``"percpu"``/``""``) to wqkit's flag bits."""
    if isinstance(text, int):
        return text
    bits = 0
    for name in filter(None, (part.strip().lower() for part in text.split(","))):
        if name == "percpu":
            continue
        if name not in WQ_FLAGS:
            raise WqkitError(f"unknown workqueue flag {name!r} (known: percpu, {', '.join(WQ_FLAGS)})")
        bits |= WQ_FLAGS[name]
    return bits


@dataclass(frozen=True)
class Option:
    """A command-line option of an experiment and the module parameter it sets."""

    flag: str
    param: str
    help: str
    kind: str = "int"          # "int", "bool", "flags" or "cpus" (a list such as 0,1)


@dataclass(frozen=True)
class Experiment:
    """One experiment: its module, debugfs directory and options."""

    name: str
    module: str
    description: str
    count_param: str            # the parameter that sets how many samples are expected
    options: tuple[Option, ...]
    #: What a sample's interval (t1 - t0) measures, for tables and titles.
    measures: str
    #: Whether that interval is queue → execution of one work item, its items queued one after
    #: the other: then the queue latency tracer's k-th item is sample k, and the two compare.
    queue_to_execution: bool = False
    #: Whether its samples are a timestamp pair whose own cost is calibrated and subtracted.
    calibrated: bool = False
    #: Whether it runs a task graph (wqkit.graph), written to the module after loading.
    graph: bool = False

    @property
    def debugfs_dir(self) -> str:
        return f"/sys/kernel/debug/wqkit/{self.name}"


_COMMON = (
    Option("--cpu", "cpu", "CPU to queue on (-1: any)"),
    Option("--flags", "wq_flags", "workqueue flags: percpu or a list of unbound,highpri,cpu_intensive",
           kind="flags"),
)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        "insert_exec", "wq_insert_exec",
        "time from queue_work_on() to the start of the work function",
        "nr",
        (Option("--nr", "nr", "work items to queue"), *_COMMON,
         Option("--max-active", "max_active", "workqueue max_active (0: default)"),
         Option("--gap-us", "gap_us", "microseconds between two inserts (0: burst)"),
         Option("--serial", "serial", "wait for each item before queueing the next", kind="bool"),
         Option("--calibrate", "calibrate", "only measure back-to-back timestamp pairs", kind="bool")),
        "queue_work_on() → work start", queue_to_execution=True, calibrated=True,
    ),
    Experiment(
        "exec_time_pred", "wq_exec_time_pred",
        "execution time of the same work function, execution after execution",
        "nr",
        (Option("--nr", "nr", "executions to time"), *_COMMON,
         Option("--loops", "loops", "busy-loop iterations per execution"),
         Option("--mem-kb", "mem_kb", "KiB of memory written per execution")),
        "work execution time", calibrated=True,
    ),
    Experiment(
        "new_worker", "wq_new_worker",
        "flood one worker pool so that it creates workers (load for the tracers)",
        "nr_work_max",
        (Option("--nr-work-max", "nr_work_max", "work items to insert"),
         Option("--delay", "delay", "milliseconds between two insertions"),
         Option("--hold-ms", "hold_ms", "milliseconds each work item sleeps"),
         Option("--cpu", "cpu", "CPU whose pool receives the load")),
        "queue → work start under worker creation", queue_to_execution=True,
    ),
    Experiment(
        "kserver", "wq_kserver",
        "a graph of dependent tasks on a workqueue: makespan, waits, placement",
        "nr_samples",
        (Option("--repeat", "repeat", "times the graph runs"),
         Option("--flags", "wq_flags", "workqueue flags: percpu or a list of unbound,highpri,cpu_intensive",
                kind="flags"),
         Option("--max-active", "max_active", "workqueue max_active (0: default)"),
         Option("--task-cpus", "cpus", "CPUs the tasks are queued on, round-robin by task (e.g. 0,1; default any)",
                kind="cpus")),
        "task ready → start, and start → end (two samples per task)", graph=True,
    ),
)}


def experiment(name: str) -> Experiment:
    """The experiment called ``name``, or a one-line error listing them."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise WqkitError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})") from None


def module_params(exp: Experiment, values: Mapping[str, object]) -> dict[str, object]:
    """Module parameters from option values keyed by parameter name (None = module default)."""
    params: dict[str, object] = {}
    for option in exp.options:
        value = values.get(option.param)
        if value is None:       # not given: the module's default (0 and False are values)
            continue
        if option.kind == "flags":
            value = parse_wq_flags(value)
        elif option.kind == "bool":
            value = int(bool(value))
        elif option.kind == "cpus" and isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        params[option.param] = value
    unknown = set(values) - {o.param for o in exp.options}
    if unknown:
        raise WqkitError(f"{exp.name}: unknown parameter(s) {', '.join(sorted(unknown))}")
    return params
