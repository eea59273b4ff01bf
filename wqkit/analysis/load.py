"""Loading run directories: samples, provenance, and cycles converted to ns.

A run is refused with a one-line error naming the file when it is not a run
directory, or when its meta.json or Parquet files are corrupt or truncated.
Its status travels with it: :func:`load_runs` leaves failed runs out unless
asked (they are then marked), and skips a run it cannot read instead of
aborting the others; both are said in the returned list's ``notes``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from wqkit.errors import WqkitError
from wqkit.experiments.samples import COLUMNS
from wqkit.runs.kinds import RunKind, run_kinds
from wqkit.runs.spec import Param, experiments, flag_names
from wqkit.study.index import STUDY_META


def measures(experiment: str) -> str:
    """What an experiment's samples measure, for titles and tables ("" when it is not known here)."""
    exp = experiments().get(experiment)
    return exp.measures if exp else ""


@dataclass
class RunDir:
    """What every loaded run directory has: its path and meta.json."""

    path: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def experiment(self) -> str:
        return self.meta["experiment"]

    @property
    def status(self) -> str:
        """``ok``, or ``failed`` (with ``meta["error"]``) for a run that did not complete."""
        return self.meta.get("status", "failed")

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Run(RunDir):
    """One run directory, loaded."""

    samples: pd.DataFrame
    calibration: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def tsc_khz(self) -> int:
        if not self.meta.get("tsc_khz"):
            raise WqkitError(f"{self.name}: no tsc_khz in meta.json (the run {self.status}: "
                             f"{self.meta.get('error') or 'no reason given'})")
        return int(self.meta["tsc_khz"])

    @property
    def overhead_cycles(self) -> float:
        """The calibrated cost of the timestamp pair (0 when the run has none)."""
        return float(self.meta.get("calibration", {}).get("median_cycles", 0.0))

    @property
    def is_tcg(self) -> bool:
        return self.meta.get("accel") == "tcg"

    @cached_property
    def cycles(self) -> np.ndarray:
        """Measured cycles minus the calibrated overhead, as float64."""
        return self.samples["cycles"].to_numpy(dtype=np.float64) - self.overhead_cycles

    @cached_property
    def ns(self) -> np.ndarray:
        """:attr:`cycles` in nanoseconds, via the run's tsc_khz (cycles * 10^6 / tsc_khz)."""
        return self.cycles * (1e6 / self.tsc_khz)

    @cached_property
    def sorted_ns(self) -> np.ndarray:
        """:attr:`ns` sorted once, shared by every percentile, CDF and histogram."""
        return np.sort(self.ns)

    @cached_property
    def cpu_pair_stats(self) -> dict[tuple[int, int], dict[str, float]]:
        """Count, mean and p1/p25/p50/p75/p99 (ns) per (queuing CPU, executing CPU) pair.

        Percentiles by partitioning each pair's values (O(n)), not by sorting them.
        """
        code = (self.samples["cpu_queue"].to_numpy().astype(np.int64) << 16) | self.samples["cpu_exec"].to_numpy()
        stats = {}
        for c in (np.flatnonzero(np.bincount(code)) if len(code) else []):
            values = self.ns[code == c]
            p1, p25, p50, p75, p99 = np.percentile(values, [1, 25, 50, 75, 99])
            stats[(int(c) >> 16, int(c) & 0xFFFF)] = {
                "count": len(values), "mean": float(values.mean()),
                "p1": p1, "p25": p25, "p50": p50, "p75": p75, "p99": p99}
        return stats

    @cached_property
    def mad_ns(self) -> float:
        """Median absolute deviation of :attr:`ns` (unscaled)."""
        median = float(self.sorted_ns[len(self.sorted_ns) // 2])
        return float(np.median(np.abs(self.ns - median)))

    @property
    def label(self) -> str:
        """A short legend label: experiment, its sample count and the parameters that differ from
        their declared defaults (as the kernel reported them; all of them for an experiment not
        declared here)."""
        exp = experiments().get(self.experiment)
        declared = {p.name: p for p in exp.module_spec.params} if exp else {}
        shown = []
        for key, value in self.meta.get("parameters", {}).items():
            param = declared.get(key)
            if param is not None and key != exp.count_param and (not param.settable or _is_default(param, value)):
                continue
            if param is not None and param.type == "flags":
                value = flag_names(int(value))
            shown.append(f"{key}={value}")
        patched = " patched" if self.meta.get("patched") else ""
        failed = "" if self.ok else " [FAILED]"
        return f"{self.experiment}{patched}{failed} " + " ".join(shown)

    @property
    def origin(self) -> str:
        """Kernel and accelerator, with the TCG warning: what every plot must say."""
        m = self.meta
        patched = " (patched)" if m.get("patched") else ""
        accel = m.get("accel", "?").upper()
        warning = " — emulation timings, not hardware timings" if self.is_tcg else ""
        return f"{m.get('kernel_release', '?')}{patched} under {accel}{warning}"

    @property
    def provenance(self) -> str:
        """One line: kernel, accelerator (with the TCG warning), CPU and tsc_khz."""
        m = self.meta
        return (f"{self.origin}; {m.get('cpus', '?')} CPUs ({m.get('cpu_model', '?')}), "
                f"tsc_khz={m.get('tsc_khz', '?')}")


def _sysfs(value: str) -> int | str:
    """A parameter as /sys/module shows it, back to what a declaration checks (bools are Y/N)."""
    return {"Y": 1, "N": 0, "(null)": ""}.get(value, value)


def _is_default(param: Param, value: str) -> bool:
    """Whether a parameter read back from the kernel holds its declared default."""
    try:
        checked = param.check("", _sysfs(value))
    except WqkitError:
        return False
    return checked == (int(param.default) if isinstance(param.default, bool) else param.default)


def df_provenance(run: Run) -> pd.DataFrame:
    """Where the run came from and every module parameter, one row per fact."""
    m = run.meta
    facts = {
        "run": run.name, "status": m.get("status"), "kernel": m.get("kernel_release"),
        "patched": m.get("patched"), "accelerator": m.get("accel"), "timing note": m.get("timing_note", ""),
        "CPU model": m.get("cpu_model"), "CPUs": m.get("cpus"), "tsc_khz": m.get("tsc_khz"),
        "target": m.get("target"), "started": m.get("started_at"),
        "clock": _clock_line(m.get("clock")),
        "wqkit": f"{m.get('wqkit', {}).get('version')} ({m.get('wqkit', {}).get('revision')})",
        "samples": ", ".join(f"{k} {v}" for k, v in m.get("samples", {}).items()),
        "timestamp overhead (cycles)": run.overhead_cycles,
        **{f"param {k}": v for k, v in m.get("parameters", {}).items()},
    }
    return pd.DataFrame({"value": [str(v) for v in facts.values()]}, index=list(facts))


def _clock_line(clock: dict | None) -> str:
    """The clock facts of a run in one line (runs before wqkit recorded them: unknown)."""
    if not clock:
        return "not recorded"
    flags = " ".join(f for f in ("constant_tsc", "nonstop_tsc", "tsc_reliable") if clock.get(f)) or "no TSC flags"
    verdict = "TSC deltas comparable" if clock.get("comparable") else "TSC deltas NOT known comparable"
    changed = clock.get("changed_during_run")
    moved = f"; clocksource became {changed['clocksource']} during the run" if changed else ""
    return f"clocksource {clock.get('clocksource')}{moved}; {flags}; {verdict}"


@dataclass
class TraceRun(RunDir):
    """A ``wqkit trace`` run directory (or an upstream module's: its declared table, one row per
    line it printed), loaded: its meta and, for ``trace workers``, its events
    (one row per tracer line: wqkit.analysis.workers), for ``trace latency`` its items (one row
    per executed work item: wqkit.analysis.latency)."""

    events: pd.DataFrame

    @property
    def items(self) -> pd.DataFrame:
        """A latency trace's items (the same frame as ``events``)."""
        return self.events


def run_kind_of(meta: dict) -> RunKind | None:
    """The run kind a run directory's meta.json records (``kind``; runs recorded before it was
    written name a tracer by their experiment's prefix, ``trace_workers_creation``); None for a
    kind this installation does not declare."""
    kinds = run_kinds()
    name = meta.get("kind") or str(meta.get("experiment", ""))
    if name in kinds:
        return kinds[name]
    return next((kind for kind in kinds.values() if kind.tracer and name.startswith(kind.name)), None)


def load_run(path: str | Path) -> Run | TraceRun:
    """Load any run directory, dispatching on its kind: a module experiment's (kserver's included)
    as a :class:`Run`, a tracer's as a :class:`TraceRun` of its declared table. What is not a run
    directory, or is corrupt, is refused with a one-line error naming the file.

    A failed run may lack samples or tsc_khz (it stopped before measuring);
    it loads with what it has.
    """
    path = Path(path)
    meta = read_meta(path)
    kind = run_kind_of(meta)
    if kind is not None and (kind.tracer or kind.upstream):
        return _load_trace(path, meta, kind)
    return _load_experiment_run(path, meta)


def read_meta(path: Path) -> dict:
    """A run directory's meta.json, or a one-line error saying why there is none."""
    meta_file = path / "meta.json"
    if not path.is_dir():
        raise WqkitError(f"{path}: no such run directory")
    if not meta_file.is_file():
        raise WqkitError(f"{path}: not a run directory (no meta.json)")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WqkitError(f"{meta_file}: corrupt JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise WqkitError(f"{meta_file}: not a run description")
    return meta


def _load_trace(path: Path, meta: dict, kind: RunKind) -> TraceRun:
    """A trace run; worker traces taken before creation times were kept lack start_ns and caller:
    they read as missing."""
    file = path / kind.table
    try:
        events = pq.read_table(file).to_pandas()
    except Exception as exc:  # pyarrow raises several types for missing and truncated files
        raise WqkitError(f"{file}: unreadable Parquet ({str(exc).splitlines()[0]})") from None
    if kind.name == "trace_workers":
        for column in ("start_ns", "caller"):
            if column not in events:
                events[column] = float("nan")
    return TraceRun(path, meta, events)


def _load_experiment_run(path: Path, meta: dict) -> Run:
    meta_file = path / "meta.json"
    required = {"experiment", "tsc_khz", "samples"} if meta.get("status") == "ok" else {"experiment"}
    missing = required - meta.keys()
    if missing:
        raise WqkitError(f"{meta_file}: not a complete run description (missing {', '.join(sorted(missing))})")
    samples_file = path / "samples.parquet"
    if meta.get("status") != "ok" and not samples_file.exists():
        samples = pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})
    else:
        samples = _read_parquet(samples_file)
    expected = meta.get("samples", {}).get("collected")
    if expected is not None and expected != len(samples):
        raise WqkitError(f"{samples_file}: {len(samples)} samples, meta.json says {expected}")
    calibration_file = path / "calibration.parquet"
    calibration = _read_parquet(calibration_file) if calibration_file.exists() else None
    return Run(path, meta, samples, calibration)


def _read_parquet(file: Path) -> pd.DataFrame:
    if not file.is_file():
        raise WqkitError(f"{file}: missing")
    try:
        frame = pq.read_table(file).to_pandas()
    except Exception as exc:  # pyarrow raises several types for truncated files
        raise WqkitError(f"{file}: unreadable Parquet ({str(exc).splitlines()[0]})") from None
    if list(frame.columns) != COLUMNS:
        raise WqkitError(f"{file}: unexpected columns {list(frame.columns)}")
    return frame


def find_runs(path: str | Path, recursive: bool = False) -> list[Path]:
    """A run directory itself, or every run directory directly under ``path`` (at any depth with
    ``recursive``: a latency trace holds its experiment's run), sorted. The runs of a study
    below ``path`` are left out: a study is read as a whole (wqkit.analysis.study), and its
    many runs would otherwise pass for the reference runs beside it."""
    path = Path(path)
    if (path / "meta.json").exists():
        return [path]
    found = (p.parent for p in path.glob("**/meta.json" if recursive else "*/meta.json")) if path.is_dir() else []
    runs = sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts)
                  and not _in_study_below(path, p))
    if not runs:
        raise WqkitError(f"{path}: neither a run directory nor a directory of runs")
    return runs


def _in_study_below(top: Path, run: Path) -> bool:
    """Whether ``run`` lies in a study directory below ``top`` (``top`` itself not counted)."""
    return any((top / parent / STUDY_META).is_file() for parent in run.relative_to(top).parents[:-1])


def newest_ok_run(paths: list[Path], experiment: str, where: str | Path) -> Path:
    """The newest of ``paths`` (run directories, by when they started) that is a run of
    ``experiment`` and ended ok. Runs of other experiments (a trace among experiment runs)
    are passed over; failed runs newer than the one chosen are named on stderr, so a notebook
    never analyses a failed run by accident nor chooses an older one silently."""
    runs = []
    for path in paths:
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if meta.get("experiment") == experiment:
            runs.append((meta.get("started_at") or "", path.name, path, meta.get("status")))
    runs.sort()
    ok = [i for i, run in enumerate(runs) if run[3] == "ok"]
    if not ok:
        failed = f" ({len(runs)} failed)" if runs else ""
        raise WqkitError(f"{where}: no {experiment} run that ended ok{failed}")
    newest = ok[-1]
    for _, name, _, status in runs[newest + 1:]:
        print(f"wqkit: {where}: passing over {name}, newer but {status}", file=sys.stderr)
    return runs[newest][2]


class RunList(list):
    """A list of runs, with ``notes``: one line per run left out and why."""

    def __init__(self, runs=(), notes=()) -> None:
        super().__init__(runs)
        self.notes: list[str] = list(notes)


def load_runs(*paths: str | Path, include_failed: bool = False) -> RunList:
    """Every run found under the given paths (see :func:`find_runs`).

    Failed runs are left out unless ``include_failed`` (their label then says
    FAILED); a run that cannot be read is skipped. Each is named in ``notes``.
    """
    runs = RunList()
    for path in paths:
        for run_dir in find_runs(path):
            try:
                run = load_run(run_dir)
            except WqkitError as exc:
                runs.notes.append(f"skipped {run_dir.name}: {exc}")
                continue
            if run.ok or include_failed:
                runs.append(run)
                if not run.ok:
                    runs.notes.append(f"included FAILED run {run.name}: {run.meta.get('error')}")
            else:
                runs.notes.append(f"left out failed run {run.name}: {run.meta.get('error')} "
                                  "(include it with --include-failed)")
    return runs
