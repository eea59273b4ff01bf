"""What a study's ``[[experiment]]`` can name: a module's experiment, or a tracer around its load.

    [[experiment]]
    name = "insert_exec"                              # any experiment wqkit knows
    [[experiment]]
    name = "trace_workers"                            # create_worker() durations under new_worker's flood
    params = { kind = "creation", engine = "bpftrace", nr_work_max = 40 }
    [[experiment]]
    name = "trace_latency"                            # the tracepoints around an experiment
    params = { during = "insert_exec", engine = "bcc", nr = 2000 }

Each kind says which parameters it takes (a factor applies to the kinds that
take it), checks a point's parameters before anything boots, and runs one
point in a lab session it is given, into an ordinary run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

from wqkit.errors import WqkitError
from wqkit.experiments.graph import TaskGraph
from wqkit.experiments.runner import run_experiment
from wqkit.runs.spec import Experiment, experiment
from wqkit.target import Target
from wqkit.trace.engine import DEFAULT_ENGINE, MAP_KEYS, check_engines
from wqkit.trace.latency import latency_program, trace_latency
from wqkit.trace.workers import DEATH_WORKERS, KINDS, TRIGGERS, checked_load, flood_params, trace_workers

#: The tracers a study can run, with the parameters of their own (besides their load's).
WORKERS_TRACE = "trace_workers"
LATENCY_TRACE = "trace_latency"
WORKERS_OPTIONS = ("kind", "engine", "trigger", "workers")
LATENCY_OPTIONS = ("engine", "max_pending", "during")


@dataclass(frozen=True)
class Kind:
    """One ``[[experiment]]`` of a study: its name, the parameters it takes, whether it runs a
    task graph; ``check`` refuses a point's parameters with a one-line error, ``run`` makes
    one run directory."""

    name: str
    options: frozenset[str]
    graph: bool
    check: Callable[[Mapping[str, object]], None]
    run: Callable[..., Path]


def study_kind(name: str, fixed: Mapping[str, object]) -> Kind:
    """The kind an ``[[experiment]]`` names, given its fixed ``params`` (a latency trace takes
    its ``during`` experiment's parameters too)."""
    if name == WORKERS_TRACE:
        options = frozenset(WORKERS_OPTIONS) | {p.name for p in flood_params()}
        return Kind(name, options, False, _check_workers, _run_workers)
    if name == LATENCY_TRACE:
        during = fixed.get("during")
        if not isinstance(during, str):
            raise WqkitError(f"{LATENCY_TRACE}: give the experiment it traces as params.during")
        exp = experiment(during)
        return Kind(name, frozenset(LATENCY_OPTIONS) | {p.name for p in exp.options}, exp.graph,
                    _check_latency, _run_latency)
    exp = experiment(name)
    return Kind(exp.name, frozenset(p.name for p in exp.options), exp.graph, partial(_check_experiment, exp),
                partial(_run_experiment, exp))


def _check_experiment(exp: Experiment, params: Mapping[str, object]) -> None:
    exp.values(params)


def _run_experiment(exp: Experiment, params: Mapping[str, object], **run_options) -> Path:
    return run_experiment(exp.name, dict(params), **run_options)


def _split(params: Mapping[str, object], own: tuple[str, ...]) -> tuple[dict, dict]:
    return ({k: v for k, v in params.items() if k in own}, {k: v for k, v in params.items() if k not in own})


def _workers_args(params: Mapping[str, object]) -> dict:
    own, load = _split(params, WORKERS_OPTIONS)
    return {"kind": own.get("kind", KINDS[0]), "engine": own.get("engine", DEFAULT_ENGINE),
            "trigger": own.get("trigger", TRIGGERS[0]), "workers": own.get("workers", DEATH_WORKERS),
            "load": load}


def _check_workers(params: Mapping[str, object]) -> None:
    args = _workers_args(params)
    checked_load(args["kind"], args["engine"], args["trigger"], args["load"] or None, args["workers"])


def _run_workers(params: Mapping[str, object], *, target: Target, out: Path, timeout: float,
                 progress: Callable[[str], None], annotations: Mapping[str, object],
                 graph: TaskGraph | None = None) -> Path:
    args = _workers_args(params)
    return trace_workers(args.pop("kind"), **args, timeout=timeout, target=target, out=out, progress=progress,
                         annotations=annotations)


def _check_latency(params: Mapping[str, object]) -> None:
    own, values = _split(params, LATENCY_OPTIONS)
    experiment(str(own["during"])).values(values)
    check_engines(own.get("engine", DEFAULT_ENGINE))
    max_pending = own.get("max_pending", MAP_KEYS)
    if isinstance(max_pending, bool) or not isinstance(max_pending, int):
        raise WqkitError(f"max_pending={max_pending!r} is not an integer")
    latency_program([str(own["during"])], max_pending)


def _run_latency(params: Mapping[str, object], *, target: Target, out: Path, timeout: float,
                 progress: Callable[[str], None], annotations: Mapping[str, object],
                 graph: TaskGraph | None = None) -> Path:
    own, values = _split(params, LATENCY_OPTIONS)
    return trace_latency(engine=own.get("engine", DEFAULT_ENGINE), during=str(own["during"]), values=values,
                         graph=graph, max_pending=int(own.get("max_pending", MAP_KEYS)), timeout=timeout,
                         target=target, out=out, progress=progress, annotations=annotations)
