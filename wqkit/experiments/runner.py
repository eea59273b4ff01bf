"""Running an experiment end to end and writing its self-describing run directory.

``run_experiment`` builds the experiment's module for the target, loads it,
follows its progress, collects every sample, unloads it and writes::

    RUN_DIR/meta.json          provenance, parameters, sample counts, status, kworkers and
                               unbound pools created (wqkit.inspect.kworkers)
    RUN_DIR/samples.parquet    the samples (schema in wqkit.experiments.samples)
    RUN_DIR/calibration.parquet  calibrated experiments: back-to-back timestamp pairs
    RUN_DIR/phases.parquet     on a CONFIG_WQ_MEASURE kernel: the kernel's timestamps per item
    RUN_DIR/state.parquet      with sample_state_hz: pools and workqueues over time (from the host)
    RUN_DIR/graph.txt          graph experiments (kserver): the task graph that ran
    RUN_DIR/dmesg.txt          the kernel log of the run, from loading to unloading
    RUN_DIR/splats.txt         what the kernel reported, if anything (KASAN, lockdep, WARN, leaks...):
                               the run is then failed
    RUN_DIR/run.log            the progress lines of the run (boot, build, calibration)

The directory is written as ``.NAME.partial`` and renamed at the end, so a
half-written run never looks complete. A failed or interrupted run keeps what
it collected, is marked ``"status": "failed"`` with the reason, and leaves no
module loaded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
from tqdm import tqdm

from wqkit.experiments import kmod
from wqkit.inspect.kworkers import census, kworkers
from wqkit.console import bars_disabled, progress_stream
from wqkit.errors import LabError, WqkitError
from wqkit.runs.kinds import RunKind
from wqkit.runs.lifecycle import RUN_TIMEOUT_S, recorded_run
from wqkit.runs.spec import Experiment, Param, calibrator, experiment
from wqkit.experiments.graph import TaskGraph
from wqkit.experiments.samples import (PHASE_POINTS, SAMPLE_DTYPE, RecorderStats, parse_phases,
                           parse_samples)
from wqkit.target import LabTarget, Target

CALIBRATION_NR = 10_000
GRAPH_DIR = "/sys/kernel/debug/wqkit_kserver"
POLL_SECONDS = 1.0


def run_experiment(name: str, values: Mapping[str, object], *, target: Target | None = None,
                   target_name: str = "lab", out: Path = Path("runs"), timeout: float = RUN_TIMEOUT_S,
                   progress: Callable[[str], None] = print, sample_state_hz: float | None = None,
                   graph: TaskGraph | None = None, annotations: Mapping[str, object] | None = None,
                   **lab_options) -> Path:
    """Run experiment ``name`` with option values keyed by module parameter; return the run dir.

    ``target`` may be an open target (a notebook's lab session); otherwise
    one is made from ``target_name`` and closed at the end. With
    ``sample_state_hz``, pools and workqueues are sampled from the host
    during the run (lab only) into ``state.parquet``. ``graph`` is the task
    graph of a graph experiment (kserver), checked before anything boots and
    saved as ``graph.txt``. ``annotations`` go into meta.json as they are (a study's point).
    Raises WqkitError (or KeyboardInterrupt) after
    writing a run directory marked failed.
    """
    exp = experiment(name)
    params = exp.values(values)             # refuse bad input before booting
    if exp.graph != (graph is not None):
        raise WqkitError(f"{exp.name}: " + ("give a task graph (--graph FILE or --shape SHAPE)" if exp.graph
                                            else "takes no task graph"))
    if graph is not None:
        graph.validate(repeat=params.get("repeat"))
    if sample_state_hz is not None:
        check_sample_state(sample_state_hz, target.name if target is not None else target_name)
    meta: dict = {"kind": exp.name, "experiment": exp.name, "module": exp.module, "requested_parameters": params,
                  **(annotations or {})}
    with recorded_run(Path(out), exp.name, meta, target=target, target_name=target_name, progress=progress,
                      before_boot=lambda opened: exp.module_spec.check_release(params, opened.release),
                      **lab_options) as run:
        check_cpu(exp.options, params, meta["cpus"])
        _measure(exp, run.target, params, run.path, meta, timeout, run.progress, sample_state_hz, graph)
        if exp.calibrated and not (exp.calibrates and params.get(exp.calibrates)):
            _calibrate(exp, run.target, run.path, meta, run.progress)
    return run.final


def run_kind(kind: RunKind, own: Mapping[str, object], values: Mapping[str, object], **options) -> Path:
    """The registry's runner of a module experiment (it has no parameters of its own)."""
    return run_experiment(kind.name, values, **options)


def check_sample_state(hz: float, target_name: str) -> None:
    """A one-line error unless ``--sample-state HZ`` can be honoured on this target."""
    from wqkit.inspect.timeline import MAX_HZ

    if not 0 < hz <= MAX_HZ:
        raise WqkitError(f"--sample-state must be between 0 and {MAX_HZ:g} Hz, not {hz:g}")
    if target_name != "lab":
        raise WqkitError("--sample-state reads the guest from outside (its RAM, from the host): it needs --target lab")


def _measure(exp: Experiment, target: Target, params: dict, dest: Path, meta: dict,
             timeout: float, progress: Callable[[str], None], sample_state_hz: float | None = None,
             graph: TaskGraph | None = None) -> None:
    """Load, follow, collect, unload; fill ``meta`` and raise on any loss or failure."""
    target.ensure_mounted("debugfs", "/sys/kernel/debug")
    sampler = None
    if sample_state_hz:
        from wqkit.inspect.lab import HostInspector
        from wqkit.inspect.timeline import StateSampler

        inspector = HostInspector.for_lab(target)
        progress(f"sampling workqueue state at {sample_state_hz:g} Hz from the host ({inspector.via})")
        sampler = StateSampler(inspector, sample_state_hz)
        sampler.start()
    splats: kmod.KernelSplats | None = None
    before = kworkers(target)
    try:
        with kmod.loaded(target, exp.module, params, progress=progress, report_dir=dest) as module:
            if graph is not None:
                _write_graph(target, graph, module, dest, meta)
            meta["parameters"] = _module_parameters(target, exp.module)
            expected = int(meta["parameters"][exp.count_param])
            frame, stats, failure = _follow_and_collect(exp, target, expected, dest, "samples", timeout)
            meta["phases"] = collect_phases(exp, target, dest, frame)
            meta["kworkers"] = census(before, kworkers(target))
    except kmod.KernelSplats as exc:
        splats = exc
    finally:
        if sampler is not None:
            state, meta["state_sampling"] = sampler.stop()
            state.to_parquet(dest / "state.parquet", index=False)
    meta["kernel_reports"] = {"splats": [f"{s.kind}: {s.line}" for s in module.splats],
                              "leaks_checked": module.leak_check,
                              "races_elsewhere": [s.line for s in module.races_elsewhere]}
    meta["tsc_khz"] = stats.tsc_khz
    meta["samples"] = sample_counts(expected, stats, frame)
    if failure is not None:
        raise failure
    if splats is not None:
        raise splats
    problems = count_problems(meta["samples"], stats)
    if problems:
        raise WqkitError(f"{exp.name}: " + "; ".join(problems))


def _write_graph(target: Target, graph: TaskGraph, module: kmod.LoadedModule, dest: Path, meta: dict) -> None:
    """Hand the task graph to the loaded module (which checks it again), and keep it with the run."""
    text = graph.to_text()
    (dest / "graph.txt").write_text(text)
    try:
        target.write(f"{GRAPH_DIR}/graph", text)
        target.write(f"{GRAPH_DIR}/run", "1")
    except LabError:
        raise
    except WqkitError as exc:
        log = [line for line in module.dmesg() if "graph" in line]
        raise WqkitError(f"the module refused the graph: {(log or [str(exc)])[-1].strip()}") from None
    meta["graph"] = {"tasks": len(graph.tasks), "edges": len(graph.edges), "file": "graph.txt"}


def sample_counts(expected: int, stats: RecorderStats, frame: pd.DataFrame) -> dict:
    """What meta.json records of a recorder's samples: expected, produced, collected, dropped,
    exported (records read through debugfs), and how they were collected (ram, qmp or debugfs)."""
    return {"expected": expected, "produced": stats.produced, "collected": len(frame),
            "dropped": stats.dropped, "exported": stats.exported, "recorder_state": stats.state,
            "collected_via": frame.attrs.get("collected_via", "debugfs")}


def count_problems(counts: dict, stats: RecorderStats) -> list[str]:
    """Every way the counts say a sample is missing; empty when the run is whole.

    The kernel counts every sample offered (produced) and every one refused
    (dropped); the host counts the valid records it parsed (collected). Once
    the producers have stopped, produced = collected + dropped must hold.
    """
    problems = []
    if stats.state != "done":
        problems.append(f"the module ended {stats.state} (error {stats.error})")
    if counts["dropped"]:
        problems.append(f"{counts['dropped']} samples dropped in the kernel")
    if counts["produced"] != counts["collected"] + counts["dropped"]:
        problems.append(f"produced {counts['produced']} != collected {counts['collected']} "
                        f"+ dropped {counts['dropped']}")
    if counts["collected_via"] == "debugfs" and counts["exported"] != counts["collected"]:
        problems.append(f"the kernel exported {counts['exported']} records, wqkit parsed {counts['collected']}")
    if not counts["expected"] == counts["produced"] == counts["collected"]:
        problems.append(f"expected {counts['expected']} samples, kernel produced {counts['produced']}, "
                        f"collected {counts['collected']}")
    return problems


def _follow_and_collect(exp: Experiment, target: Target, expected: int, dest: Path, name: str,
                        timeout: float) -> tuple[pd.DataFrame, RecorderStats, BaseException | None]:
    """Follow a loaded experiment to its end, then collect what it produced, even when
    following failed (timeout, Ctrl-C): the producers are then stopped first (the
    recorder's stop file), so the counters read before collecting are final. The
    failure is returned for the caller to raise."""
    failure: BaseException | None = None
    try:
        follow(exp, target, expected, timeout)
    except (WqkitError, KeyboardInterrupt) as exc:
        failure = exc
        target.write(f"{exp.debugfs_dir}/stop", "1", timeout=120)
    stats = _read_stats(exp, target)
    frame, via = collect(exp, target, dest, name, stats)
    if via == "debugfs":
        stats = _read_stats(exp, target)      # the read counted what it exported
    frame.attrs["collected_via"] = via
    return frame, stats, failure


def follow(exp: Experiment, target: Target, expected: int, timeout: float) -> RecorderStats:
    """Poll the recorder until the experiment ends, with a progress bar on the terminal."""
    deadline = time.monotonic() + timeout
    with tqdm(total=expected, desc=exp.name, unit="item", mininterval=1.0, leave=True,
              file=progress_stream(), disable=bars_disabled()) as bar:
        while True:
            stats = _read_stats(exp, target)
            bar.update(stats.produced - bar.n)
            if stats.state != "running":
                return stats
            if time.monotonic() > deadline:
                raise WqkitError(f"{exp.name} still ran after {timeout:g} s "
                                 f"({stats.produced}/{expected} samples); stopped")
            time.sleep(POLL_SECONDS)


def _read_stats(exp: Experiment, target: Target) -> RecorderStats:
    return RecorderStats.parse(target.read(f"{exp.debugfs_dir}/stats"))


def collect(exp: Experiment, target: Target, dest: Path, name: str = "samples",
            stats: RecorderStats | None = None) -> tuple[pd.DataFrame, str]:
    """The sample array's valid records, stored as Parquet, and how they came (``ram``, ``qmp``
    or ``debugfs``).

    In the lab, once the producers are done, the array is read from the host
    straight out of guest memory (``stats.buffer``), from its RAM mapped on the
    host (or over QMP): milliseconds for 10^6 samples, against seconds through
    debugfs, the guest's 9p share and a file. Elsewhere, or if that read fails,
    through debugfs.
    """
    raw, via = None, "debugfs"
    if isinstance(target, LabTarget) and stats is not None and stats.buffer and stats.state != "running":
        raw, via = _read_guest(target, stats.buffer, stats.capacity * SAMPLE_DTYPE.itemsize) or (None, via)
    if raw is None:
        path = target.copy_back(f"{exp.debugfs_dir}/samples", dest / f"{name}.bin")
        raw = path.read_bytes()
        path.unlink()
    return parse_samples(raw, dest / f"{name}.parquet"), via


def _read_guest(target: LabTarget, address: int, size: int) -> tuple[bytes, str] | None:
    """``size`` bytes of guest kernel memory at ``address`` read from the host, and how
    (``ram`` or ``qmp``); None if that fails."""
    from drgn import FaultError

    from wqkit.inspect.lab import HostInspector

    try:
        inspector = HostInspector.for_lab(target)
        with inspector.reading_memory() as prog:     # a state sampler may share it
            return prog.read(address, size), inspector.via
    except (WqkitError, FaultError, OSError):
        return None


def collect_phases(exp: Experiment, target: Target, dest: Path, samples: pd.DataFrame) -> dict | None:
    """The kernel's own timestamps of the collected items, when the kernel has them
    (a CONFIG_WQ_MEASURE kernel, linux_patch_exp/): ``phases.parquet``, and what meta.json says of it."""
    phases_file = f"{exp.debugfs_dir}/phases"
    if not target.exists(phases_file):
        return None
    raw = target.copy_back(phases_file, dest / "phases.bin")
    frame = parse_phases(raw.read_bytes(), samples["seq"].to_numpy())
    raw.unlink()
    frame.to_parquet(dest / "phases.parquet", index=False)
    return {"points": list(PHASE_POINTS), "rows": len(frame), "unit": "TSC cycles (wq_timestamp)",
            "source": "CONFIG_WQ_MEASURE stamps of the kernel's workqueue code"}


def _calibrate(exp: Experiment, target: Target, dest: Path, meta: dict, progress: Callable[[str], None]) -> None:
    """Measure the cost of the timestamp pair itself, for the analysis to subtract.

    The pair is the same ``rdtsc_ordered()`` pair every calibrated experiment
    takes, so the experiment that declares ``calibrates`` measures it for all of
    them, on the experiment's CPU. Its samples are checked for loss like the run's.
    """
    calib = calibrator()
    nr = min(CALIBRATION_NR, int(meta["parameters"][exp.count_param]))
    cpu = next((int(meta["parameters"][p.name]) for p in exp.options if p.role == "cpu"), -1)
    cpu_param = next((p.name for p in calib.options if p.role == "cpu"), None)
    params = {calib.count_param: nr, str(calib.calibrates): 1,
              **({cpu_param: cpu} if cpu >= 0 and cpu_param else {})}
    progress(f"calibrating the timestamp pair ({nr} pairs)")
    with kmod.loaded(target, calib.module, params, progress=progress):
        frame, stats, failure = _follow_and_collect(calib, target, nr, dest, "calibration", timeout=600)
    counts = sample_counts(nr, stats, frame)
    meta["calibration"] = {**counts, "samples": len(frame)}
    if failure is not None:
        raise failure
    problems = count_problems(counts, stats)
    if problems:
        raise WqkitError("calibration: " + "; ".join(problems))
    meta["calibration"].update({"median_cycles": float(frame["cycles"].median()),
                                "min_cycles": int(frame["cycles"].min())})


def _module_parameters(target: Target, module: str) -> dict[str, str]:
    """Every parameter of a loaded module as the kernel reports it (/sys/module)."""
    return {name: text.rstrip("\n") for name, text in target.read_dir(f"/sys/module/{module}/parameters").items()}


def check_cpu(options: tuple[Param, ...], params: dict, cpus: int) -> None:
    """A one-line error when a parameter that names CPUs (``role = "cpu"``: a CPU, or a list of
    them) names one the target does not have."""
    for param in (p for p in options if p.role == "cpu"):
        value = params.get(param.name, param.default)
        named = [int(v) for v in str(value).split(",") if v.strip()] if param.type == "cpulist" else [int(value)]
        if max(named, default=-1) >= cpus:
            raise WqkitError(f"{param.name}={value} names a CPU the target does not have "
                             f"({cpus} CPUs: 0..{cpus - 1})")
