"""What the notebooks call: measure a run (or load an existing one) in one line."""

from __future__ import annotations

from pathlib import Path

from itertools import product

import pandas as pd

from wqkit.analysis.load import Run, find_runs, load_run, newest_ok_run
from wqkit.console import progress_line
from wqkit.graph import TaskGraph, parse_shape
from wqkit.run import run_experiment
from wqkit.target import LabTarget, Target


def measure_or_load(experiment: str, data_dir: str | Path | None = None, *, target: str | Target = "lab",
                    out: str | Path = "runs", sample_state_hz: float | None = None, graph: TaskGraph | None = None,
                    **values) -> Run:
    """Load the newest ``experiment`` run under ``data_dir`` that ended ok (see
    :func:`~wqkit.analysis.load.newest_ok_run`); without ``data_dir``, measure a new run.

    ``values`` are the experiment's parameters (``nr``, ``cpu``, ``wq_flags``, ...);
    ``None`` means "not given: the module's default", and every other value,
    ``0`` and ``False`` included, is passed to the module as it is (``cpu=0``
    pins to CPU 0). ``target`` is ``"lab"``, ``"local"`` or an open Target.
    ``sample_state_hz`` samples pools and workqueues from the host during the run (lab);
    ``graph`` is a graph experiment's task graph (kserver).
    Progress goes to the terminal and to the run's ``run.log``, not into the notebook's output.
    """
    if data_dir:
        return load_run(newest_ok_run(find_runs(data_dir), experiment, data_dir))
    params = {k: v for k, v in values.items() if v is not None}
    where = {"target": target} if isinstance(target, Target) else {"target_name": target}
    return load_run(run_experiment(experiment, params, out=Path(out), progress=progress_line,
                                   sample_state_hz=sample_state_hz, graph=graph, **where))


def trace_or_load(kind: str, data_dir: str | Path | None = None, *, target: str | Target = "lab",
                  out: str | Path = "runs", **options) -> tuple[dict, pd.DataFrame]:
    """``data_dir`` if it is a ``trace workers`` run of ``kind`` (creation or die), else the newest
    one under it that ended ok; without ``data_dir``, trace a new run with ``options`` (engine,
    trigger, delay, nr_work_max, ...; None: the default). Returns its meta.json and events."""
    from wqkit.trace.workers import load_trace, trace_workers

    if data_dir:
        root = Path(data_dir)
        runs = [p.parent for p in root.glob("**/meta.json")]
        return load_trace(newest_ok_run(runs, f"trace_workers_{kind}", data_dir))
    given = {k: v for k, v in options.items() if v is not None}
    where = {"target": target} if isinstance(target, Target) else {"target_name": target}
    return load_trace(trace_workers(kind, out=Path(out), progress=progress_line, **given, **where))


def task_graph(shape: str, size: str = "", cost: str = "busy:20000") -> TaskGraph:
    """The graph of a shape (``fork-join``), its sizes (``width=8,depth=2``) and a cost
    (``busy:20000``, ``sleep:500`` µs or ``mem:256`` KiB) for every task."""
    kind, _, value = cost.partition(":")
    spec = ",".join(filter(None, [size, f"kind={kind}", f"value={value}" if value else ""]))
    return parse_shape(f"{shape}:{spec}")


def sweep_kserver(graph: TaskGraph, *, flags=("percpu", "unbound"), max_active=(0, 1), cpus=("",),
                  repeat: int = 5, out: str | Path = "runs", **lab_options) -> list[Run]:
    """Run the same graph on every workqueue configuration of flags × max_active × task CPUs,
    in one lab session; return the runs (see analysis.df_configs)."""
    runs = []
    with LabTarget(progress=progress_line, **lab_options) as target:
        for wq_flags, active, task_cpus in product(flags, max_active, cpus):
            values = {"repeat": repeat, "wq_flags": wq_flags, "max_active": active, "cpus": task_cpus or None}
            path = run_experiment("kserver", values, target=target, out=Path(out), graph=graph,
                                  progress=progress_line)
            runs.append(load_run(path))
    return runs
