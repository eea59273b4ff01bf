"""What the notebooks call: measure a run (or load an existing one) in one line, and show it."""

from __future__ import annotations

from itertools import product
from pathlib import Path

from wqkit import analysis
from wqkit.analysis.load import Run, TraceRun, find_runs, load_run, newest_ok_run
from wqkit.console import progress_line
from wqkit.errors import WqkitError
from wqkit.paths import SOURCE_DIR
from wqkit.experiments.graph import TaskGraph, parse_shape
from wqkit.experiments.runner import run_experiment
from wqkit.lab import resolve_kernel
from wqkit.lab.topology import parse_topology
from wqkit.runs.kinds import run_kind
from wqkit.runs.spec import experiment
from wqkit.target import LabTarget, Target


def _where(target: str | Target) -> dict:
    return {"target": target} if isinstance(target, Target) else {"target_name": target}


def lab_options(kernel: str | None = None, topology: str | None = None) -> dict:
    """The lab a notebook's ``kernel`` and ``topology`` parameters name (None: the defaults).

    ``kernel`` is what ``--kernel`` takes (``7.3``, ``patched``, ``patched-7.3``, a release...);
    ``topology`` the machine's shape (``sockets=2,cores=4,threads=2,numa=2``, or a name:
    wqkit.lab.topology)."""
    return {**({"kernel": resolve_kernel(kernel)} if kernel else {}),
            **({"topology": parse_topology(topology)} if topology else {})}


def repository_path(path: str | Path) -> Path:
    """``path`` as given, or, relative and not found here, relative to the repository: JupyterLab
    runs a notebook's kernel in notebooks/, papermill and ``wqkit report`` in the repository, and
    a notebook's ``data/...`` parameter must mean the same in both."""
    path = Path(path)
    return SOURCE_DIR / path if not path.is_absolute() and not path.exists() and (SOURCE_DIR / path).exists() \
        else path


def newest_run(data_dir: str | Path, kind: str) -> Run | TraceRun:
    """``data_dir`` if it is a run of ``kind`` (an experiment, or ``trace_workers_creation``...)
    that ended ok, else the newest such run under it, at any depth (see
    :func:`~wqkit.analysis.load.newest_ok_run`)."""
    data_dir = repository_path(data_dir)
    return load_run(newest_ok_run(find_runs(data_dir, recursive=True), kind, data_dir))


def measure_or_load(name: str, data_dir: str | Path | None = None, *, target: str | Target = "lab",
                    out: str | Path = "runs", sample_state_hz: float | None = None, graph: TaskGraph | None = None,
                    kernel: str | None = None, topology: str | None = None, **values) -> Run:
    """Load the newest ``name`` run under ``data_dir`` that ended ok; without ``data_dir``, measure
    a new run.

    ``values`` are the experiment's parameters (``nr``, ``cpu``, ``wq_flags``, ...), checked
    against its declaration either way; ``None`` means "not given: the declared default", and
    every other value, ``0`` and ``False`` included, is passed to the module as it is (``cpu=0``
    pins to CPU 0). ``target`` is ``"lab"``, ``"local"`` or an open Target.
    ``sample_state_hz`` samples pools and workqueues from the host during the run (lab);
    ``graph`` is a graph experiment's task graph (kserver); ``kernel`` and ``topology`` the lab's
    (:func:`lab_options`).
    Progress goes to the terminal and to the run's ``run.log``, not into the notebook's output.
    """
    params = experiment(name).values(values)
    if data_dir:
        return newest_run(data_dir, name)
    return load_run(run_experiment(name, params, out=Path(out), progress=progress_line,
                                   sample_state_hz=sample_state_hz, graph=graph, **_where(target),
                                   **lab_options(kernel, topology)))


def trace_or_load(kind: str, data_dir: str | Path | None = None, *, target: str | Target = "lab",
                  out: str | Path = "runs", kernel: str | None = None, topology: str | None = None,
                  **options) -> TraceRun:
    """``data_dir`` if it is a ``trace workers`` run of ``kind`` (creation or die), else the newest
    one under it that ended ok; without ``data_dir``, trace a new run with ``options``: any parameter
    trace_workers.toml declares (engine, trigger, workers...) or its flood's (delay, nr_work_max,
    hold_ms); None: the declared default. ``kernel`` and ``topology``: the lab's (:func:`lab_options`)."""
    if data_dir:
        return newest_run(data_dir, f"trace_workers_{kind}")
    return load_run(run_kind("trace_workers").run({"kind": kind, **options}, out=Path(out), progress=progress_line,
                                                  **_where(target), **lab_options(kernel, topology)))


def _section(title: str, text: str = "") -> None:
    from IPython.display import Markdown, display

    display(Markdown(f"## {title}" + (f"\n\n{text}" if text else "")))


def _show(*objects) -> None:
    """Display each object; a figure once (closed after, so the inline backend does not repeat it)."""
    import matplotlib.pyplot as plt
    from IPython.display import display
    from matplotlib.figure import Figure

    for obj in objects:
        display(obj)
        if isinstance(obj, Figure):
            plt.close(obj)


def _provenance(run: Run) -> None:
    _section("Provenance and parameters")
    _show(analysis.df_provenance(run))


def _summary(run: Run) -> None:
    _section("Summary")
    _show(analysis.df_summary_table([run]).T)


def _distribution(run: Run) -> None:
    _section("Distribution", f"Each sample: {experiment(run.experiment).measures}.")
    _show(*(plot([run]) for plot in (analysis.plot_histogram, analysis.plot_cdf, analysis.plot_ccdf)))


def _run_order(run: Run) -> None:
    _section("In run order: warm-up, drift, periodic spikes")
    _show(analysis.plot_timeseries(run))


def _phases(run: Run) -> None:
    _section("Inside the workqueue code", "On the patched lab kernel (`--kernel patched`, `linux_patch_exp/`), "
             "the kernel timestamps each of this run's work items along its own code: the wait splits into "
             "phases.")
    if analysis.load_phases(run) is None:
        print(f"{run.meta.get('kernel_release')} has no measurement points: run on --kernel patched to see "
              "the phases.")
        return
    _show(analysis.readable(analysis.df_phase_summary(run)), analysis.plot_phases(run))


def _per_cpu(run: Run) -> None:
    _section("Per CPU (queuing → executing)")
    _show(analysis.readable(analysis.df_per_cpu(run)), analysis.plot_per_cpu(run))


def _placement(run: Run) -> None:
    _section("Where the items ran", "Each item's executing CPU against the CPU that queued it, by the guest's "
             "topology (SMT siblings, last-level cache, NUMA node): what an unbound workqueue's affinity scope "
             "decides. A fact of the kernel's logic, valid under TCG.")
    if "cpu_topology" not in run.meta:
        print("this run's meta.json records no CPU topology: rerun it to see its placement")
        return
    print(f"affinity_scope={run.meta.get('parameters', {}).get('affinity_scope', 'default')} on "
          f"{run.meta.get('cpus')} CPUs; {run.samples['pid'].nunique()} kworkers ran {len(run.samples)} items")
    workers = run.meta.get("kworkers")
    if workers:
        pools = ", ".join(workers["pools_created"]) or "none"
        print(f"while its module was loaded: {workers['created']} kworkers created, unbound pools created: {pools}")
    _show(analysis.df_placement(run))


def _outliers(run: Run) -> None:
    _section("Outliers (above median + 10·MAD)")
    outliers = analysis.df_outliers(run)
    print(f"{len(outliers)} outliers above {analysis.format_duration(outliers.attrs['threshold_ns'])}")
    _show(analysis.readable(outliers.head(20)))


def _state(run: Run) -> None:
    _section("The pool growing and shrinking", "Pools and workqueues sampled from the host, out of the guest's RAM.")
    _show(analysis.plot_state(run))


def _workers(run: Run) -> None:
    _section("Workers that ran the items", "Each item's executing kworker (`pid`) and its wait from "
             "insertion to start.")
    print(f"{run.samples['pid'].nunique()} distinct kworkers ran {len(run.samples)} work items")
    _show(analysis.df_summary_table([run]).T)


def _makespan(run: Run) -> None:
    _section("Makespan against its lower bound")
    _show(analysis.readable(analysis.df_makespan(run)))


def _gantt(run: Run) -> None:
    _section("One repetition, worker by worker")
    _show(analysis.plot_gantt(run, rep=0))


def _waits(run: Run) -> None:
    _section("How long ready tasks wait for a worker")
    _show(analysis.plot_waits(run))


#: The report sections an experiment's declaration lists (``report`` in its [experiment]).
REPORT_SECTIONS = {"provenance": _provenance, "summary": _summary, "distribution": _distribution,
                   "run_order": _run_order, "phases": _phases, "per_cpu": _per_cpu, "placement": _placement,
                   "outliers": _outliers,
                   "state": _state, "workers": _workers, "makespan": _makespan, "gantt": _gantt,
                   "waits": _waits}


def show_report(run: Run) -> None:
    """The report body of a run: the sections its experiment declares (``report``), in order."""
    sections = experiment(run.experiment).report
    unknown = [name for name in sections if name not in REPORT_SECTIONS]
    if unknown:
        raise WqkitError(f"{run.experiment}: unknown report sections {unknown} (known: {', '.join(REPORT_SECTIONS)})")
    for name in sections:
        REPORT_SECTIONS[name](run)


def task_graph(shape: str, size: str = "", cost: str = "busy:20000") -> TaskGraph:
    """The graph of a shape (``fork-join``), its sizes (``width=8,depth=2``) and a cost
    (``busy:20000``, ``sleep:500`` µs or ``mem:256`` KiB) for every task."""
    kind, _, value = cost.partition(":")
    spec = ",".join(filter(None, [size, f"kind={kind}", f"value={value}" if value else ""]))
    return parse_shape(f"{shape}:{spec}")


def sweep_kserver(graph: TaskGraph, *, flags=("percpu", "unbound"), max_active=(0, 1), cpus=("",),
                  repeat: int | None = None, out: str | Path = "runs", kernel: str | None = None,
                  topology: str | None = None) -> list[Run]:
    """Run the same graph on every workqueue configuration of flags × max_active × task CPUs,
    in one lab session (``kernel``, ``topology``: :func:`lab_options`); return the runs (see
    analysis.df_configs)."""
    runs = []
    with LabTarget(progress=progress_line, **lab_options(kernel, topology)) as target:
        for wq_flags, active, task_cpus in product(flags, max_active, cpus):
            values = {"repeat": repeat, "wq_flags": wq_flags, "max_active": active, "cpus": task_cpus or None}
            path = run_experiment("kserver", values, target=target, out=Path(out), graph=graph,
                                  progress=progress_line)
            runs.append(load_run(path))
    return runs


def show_study(study_dir: str | Path) -> None:
    """A study's report body: what ran where, then per varied factor its effects with
    intervals over boots, adjusted for the study's many comparisons (table and plot, every
    run beside its level's interval) and its runs in run order; last, the points whose boots
    fall into two regimes, with the CPUs their runs ran on."""
    from IPython.display import Markdown, display

    from wqkit.analysis import study as study_analysis

    study_dir = repository_path(study_dir)
    table = study_analysis.df_study(study_dir)
    accel = ", ".join(sorted(table["accel"].dropna().unique()))
    tcg = " **TCG: emulation timings, not hardware timings.**" if "tcg" in accel else ""
    found = list(study_analysis.study_effects(table))
    family = found[0][2].attrs["family"] if found else 0
    survivors = sum(int(effects["survives"].sum()) for _, _, effects, _ in found)
    display(Markdown(f"## {Path(study_dir).name}\n\n{len(table)} ok runs in {table['boot'].nunique()} boots "
                     f"({table.attrs['failed']} failed, {table.attrs['pending']} not run) on "
                     f"{table['host'].nunique()} host(s), accel {accel}.{tcg} The boot is the unit: each boot's "
                     f"value is the mean log of its runs' statistic, a level's the geometric mean over its boots "
                     f"with a {study_analysis.CONFIDENCE:.0%} t interval. **{family} comparisons**, their p-values "
                     f"adjusted together (Holm, family-wise error {study_analysis.FAMILY_ALPHA:.0%}): "
                     f"**{survivors} survive**."))
    several = table["experiment"].nunique() > 1
    for name, factor, effects, runs in found:
        held = effects.attrs["within"]
        _section(f"{name + ': ' if several else ''}{factor} (baseline {effects.attrs['baseline']})",
                 f"Compared within each combination of {' × '.join(held)}: a ratio's runs differ only in "
                 f"{factor}." if held else "")
        _show(study_analysis.readable_effects(effects), study_analysis.plot_effects(effects, runs, tcg=bool(tcg)),
              study_analysis.plot_order(runs, factor))
    for name, placement in study_analysis.study_placements(study_dir, table).items():
        _section(f"{name}: where the items ran", "Share of items (%) run on the CPU that queued them, its SMT "
                 "sibling, its last-level cache, its NUMA node or elsewhere, by the guest's own topology; mean "
                 "over boots. The kernel's logic: valid under TCG.")
        _show(analysis.readable_placement(placement),
              analysis.plot_study_placement(placement.sort_values(list(placement.columns[:3]))))
    for name, bench in study_analysis.study_benchmarks(study_dir, table).items():
        _section(f"{name}: the kernel's own benchmark per scope", "Geometric mean over boots with its 95 % t "
                 "interval; a hatched bar is a scope the kernel does not have, measured as another one."
                 + (" TCG: emulation timings." if tcg else ""))
        _show(analysis.readable_benchmark(bench), analysis.plot_scope_benchmark(bench))
    regimes = study_analysis.df_regimes(table)
    if len(regimes):
        _section("Regimes", "Points whose boots fall into two groups of p50, with the CPUs their work was queued "
                 "and run on: what a boot fixes, and a covariate to test.")
        _show(regimes)
