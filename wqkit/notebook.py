"""What the notebooks call: measure a run (or load an existing one) in one line, and show it."""

from __future__ import annotations

from itertools import product
from pathlib import Path

from wqkit.analysis.load import Run, TraceRun, find_runs, load_run, newest_ok_run
from wqkit.console import progress_line
from wqkit.experiments.graph import TaskGraph, parse_shape
from wqkit.experiments.runner import run_experiment
from wqkit.experiments.spec import experiment
from wqkit.target import LabTarget, Target


def _where(target: str | Target) -> dict:
    return {"target": target} if isinstance(target, Target) else {"target_name": target}


def newest_run(data_dir: str | Path, kind: str) -> Run | TraceRun:
    """``data_dir`` if it is a run of ``kind`` (an experiment, or ``trace_workers_creation``...)
    that ended ok, else the newest such run under it, at any depth (see
    :func:`~wqkit.analysis.load.newest_ok_run`)."""
    return load_run(newest_ok_run(find_runs(data_dir, recursive=True), kind, data_dir))


def measure_or_load(name: str, data_dir: str | Path | None = None, *, target: str | Target = "lab",
                    out: str | Path = "runs", sample_state_hz: float | None = None, graph: TaskGraph | None = None,
                    **values) -> Run:
    """Load the newest ``name`` run under ``data_dir`` that ended ok; without ``data_dir``, measure
    a new run.

    ``values`` are the experiment's parameters (``nr``, ``cpu``, ``wq_flags``, ...), checked
    against its declaration either way; ``None`` means "not given: the declared default", and
    every other value, ``0`` and ``False`` included, is passed to the module as it is (``cpu=0``
    pins to CPU 0). ``target`` is ``"lab"``, ``"local"`` or an open Target.
    ``sample_state_hz`` samples pools and workqueues from the host during the run (lab);
    ``graph`` is a graph experiment's task graph (kserver).
    Progress goes to the terminal and to the run's ``run.log``, not into the notebook's output.
    """
    params = experiment(name).values(values)
    if data_dir:
        return newest_run(data_dir, name)
    return load_run(run_experiment(name, params, out=Path(out), progress=progress_line,
                                   sample_state_hz=sample_state_hz, graph=graph, **_where(target)))


def trace_or_load(kind: str, data_dir: str | Path | None = None, *, target: str | Target = "lab",
                  out: str | Path = "runs", **options) -> TraceRun:
    """``data_dir`` if it is a ``trace workers`` run of ``kind`` (creation or die), else the newest
    one under it that ended ok; without ``data_dir``, trace a new run with ``options``: engine,
    trigger, workers, and the flood's parameters (delay, nr_work_max, hold_ms); None: the default."""
    from wqkit.trace.workers import flood_params, trace_workers

    if data_dir:
        return newest_run(data_dir, f"trace_workers_{kind}")
    flood = {p.name for p in flood_params()}
    given = {k: v for k, v in options.items() if v is not None and k not in flood}
    load = {k: v for k, v in options.items() if k in flood}
    return load_run(trace_workers(kind, out=Path(out), progress=progress_line, load=load, **given,
                                  **_where(target)))


def show_samples(run: Run) -> None:
    """The report body of an experiment whose samples are intervals: provenance, summary,
    distributions, run order, the kernel's phases (patched kernel), per CPU, outliers."""
    from IPython.display import Markdown, display

    from wqkit import analysis

    exp = experiment(run.experiment)

    def section(title: str, text: str = "") -> None:
        display(Markdown(f"## {title}" + (f"\n\n{text}" if text else "")))

    section("Provenance and parameters")
    display(analysis.df_provenance(run))
    section("Summary")
    display(analysis.df_summary_table([run]).T)
    section("Distribution", f"Each sample: {exp.measures}.")
    for plot in (analysis.plot_histogram, analysis.plot_cdf, analysis.plot_ccdf):
        display(plot([run]))
    section("In run order: warm-up, drift, periodic spikes")
    display(analysis.plot_timeseries(run))
    if exp.queue_to_execution:
        section("Inside the workqueue code", "On the patched lab kernel (`--kernel patched`, `linux_patch_exp/`), "
                "the kernel timestamps each of this run's work items along its own code: the wait splits into "
                "phases.")
        if analysis.load_phases(run) is not None:
            display(analysis.readable(analysis.df_phase_summary(run)))
            display(analysis.plot_phases(run))
        else:
            print(f"{run.meta.get('kernel_release')} has no measurement points: run on --kernel patched to see "
                  "the phases.")
    section("Per CPU (queuing → executing)")
    display(analysis.readable(analysis.df_per_cpu(run)))
    display(analysis.plot_per_cpu(run))
    section("Outliers (above median + 10·MAD)")
    outliers = analysis.df_outliers(run)
    print(f"{len(outliers)} outliers above {analysis.format_duration(outliers.attrs['threshold_ns'])}")
    display(analysis.readable(outliers.head(20)))


def task_graph(shape: str, size: str = "", cost: str = "busy:20000") -> TaskGraph:
    """The graph of a shape (``fork-join``), its sizes (``width=8,depth=2``) and a cost
    (``busy:20000``, ``sleep:500`` µs or ``mem:256`` KiB) for every task."""
    kind, _, value = cost.partition(":")
    spec = ",".join(filter(None, [size, f"kind={kind}", f"value={value}" if value else ""]))
    return parse_shape(f"{shape}:{spec}")


def sweep_kserver(graph: TaskGraph, *, flags=("percpu", "unbound"), max_active=(0, 1), cpus=("",),
                  repeat: int | None = None, out: str | Path = "runs", **lab_options) -> list[Run]:
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
