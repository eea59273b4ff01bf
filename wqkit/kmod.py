"""Kernel module control: build wqkit's modules for a target, load, always unload.

Parameters are validated here before ``insmod`` (and again by the module
itself, which answers ``-EINVAL`` with a ``pr_err``). :func:`loaded` unloads
the module whatever happens in its ``with`` block and, when loading fails,
puts the module's kernel log lines in the error.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote
from typing import Iterator, Mapping

from wqkit.errors import LabError, WqkitError
from wqkit.paths import MODULES_DIR, cache_dir
from wqkit.target import Target


@dataclass(frozen=True)
class IntParam:
    """An integer module parameter and its allowed range (inclusive)."""

    minimum: int
    maximum: int
    help: str

    def check(self, module: str, name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise WqkitError(f"{module}: {name}={value!r} is not an integer")
        try:
            number = int(value, 0) if isinstance(value, str) else value
        except ValueError:
            raise WqkitError(f"{module}: {name}={value!r} is not an integer") from None
        if not self.minimum <= number <= self.maximum:
            raise WqkitError(f"{module}: {name}={number} is out of range ({self.minimum}..{self.maximum})")
        return number


@dataclass(frozen=True)
class ModuleSpec:
    """One module of ``modules/`` and the parameters it accepts."""

    name: str
    description: str
    params: Mapping[str, IntParam | CpuListParam] = field(default_factory=dict)

    def insmod_args(self, values: Mapping[str, object]) -> list[str]:
        """Validated ``name=value`` arguments for insmod, or a one-line error."""
        args = []
        for name, value in values.items():
            if name not in self.params:
                known = ", ".join(self.params) or "none"
                raise WqkitError(f"{self.name}: unknown parameter {name!r} (known: {known})")
            args.append(f"{name}={self.params[name].check(self.name, name, value)}")
        return args


@dataclass(frozen=True)
class CpuListParam:
    """A comma-separated list of CPU numbers ("" for any CPU)."""

    help: str
    maximum: int = 64

    def check(self, module: str, name: str, value: object) -> str:
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        items = [item.strip() for item in text.split(",") if item.strip()]
        if len(items) > self.maximum or not all(item.isdigit() and int(item) < 4096 for item in items):
            raise WqkitError(f"{module}: {name}={text!r} is not a list of at most {self.maximum} CPU numbers")
        return ",".join(items)


_CPU = IntParam(-1, 4095, "CPU (-1: any); the module also requires it online")
_WQ_FLAGS = IntParam(0, 0x7, "wqkit workqueue flag bits")
_BOOL = IntParam(0, 1, "0 or 1")

#: Mirrors the parameter checks of modules/*.c (which remain the authority).
MODULES: dict[str, ModuleSpec] = {
    spec.name: spec for spec in (
        ModuleSpec("wq_smoke", "queue nr work items on a workqueue of its own and count them",
                   {"nr": IntParam(1, 100_000, "number of work items")}),
        ModuleSpec("wq_insert_exec", "queue_work_on() to execution latency",
                   {"nr": IntParam(1, 10_000_000, "work items"), "wq_flags": _WQ_FLAGS,
                    "max_active": IntParam(0, 512, "max_active (0: default)"), "cpu": _CPU,
                    "gap_us": IntParam(0, 1_000_000, "µs between inserts"),
                    "serial": _BOOL, "calibrate": _BOOL}),
        ModuleSpec("wq_exec_time_pred", "execution-time stability of one work function",
                   {"nr": IntParam(1, 10_000_000, "executions"), "wq_flags": _WQ_FLAGS, "cpu": _CPU,
                    "loops": IntParam(0, 1_000_000_000, "busy-loop iterations"),
                    "mem_kb": IntParam(0, 256 * 1024, "KiB written per execution")}),
        ModuleSpec("wq_new_worker", "flood a worker pool so that it creates workers",
                   {"nr_work_max": IntParam(1, 100_000, "work items"), "delay": IntParam(0, 10_000, "ms"),
                    "hold_ms": IntParam(1, 60_000, "ms each item sleeps"),
                    "cpu": IntParam(0, 4095, "CPU whose pool gets the load")}),
        ModuleSpec("wq_recorder_stress", "competing producers on the sample recorder (its stress test)",
                   {"nr": IntParam(1, 1_000_000, "slots"), "producers": IntParam(1, 16, "threads"),
                    "rounds": IntParam(1, 100_000, "times each producer offers every slot")}),
        ModuleSpec("wq_worker_death", "an unbound sysfs workqueue whose pool (and kworkers) die when unloaded; "
                   "write N to its run parameter", {"hold_ms": IntParam(1, 10_000, "ms each work item sleeps")}),
        ModuleSpec("wq_stall", "a worker blocked on purpose on CPU 0, work items piling up behind it",
                   {"hold_s": IntParam(1, 600, "seconds it blocks"), "pending": IntParam(0, 1000, "items behind it")}),
        ModuleSpec("wq_kserver", "a graph of dependent tasks on a workqueue; write the graph to "
                   "/sys/kernel/debug/wqkit_kserver/graph",
                   {"repeat": IntParam(1, 1000, "times the graph runs"), "wq_flags": _WQ_FLAGS,
                    "max_active": IntParam(0, 512, "max_active (0: default)"),
                    "cpus": CpuListParam("CPUs the tasks are queued on, round-robin")}),
        ModuleSpec("wq_fixture", "workqueues of known flags and max_active; write N to its run parameter",
                   {"max_active": IntParam(1, 512, "max_active of two of its workqueues")}),
    )
}


def module_spec(name: str) -> ModuleSpec:
    """The spec of a wqkit module, or a one-line error listing the known ones."""
    try:
        return MODULES[name]
    except KeyError:
        raise WqkitError(f"unknown module {name!r} (known: {', '.join(MODULES)})") from None


def build(target: Target, progress=print) -> Path:
    """Build every module of ``modules/`` for the target's kernel; return the build dir.

    Sources are copied to ``CACHE/modules/RELEASE-DIGEST`` (the digest of the
    sources and the Kbuild directory) and built there with ``make KDIR=...``.
    A build happens in a private temporary directory renamed into place when
    complete, so concurrent wqkit processes never build in the same place,
    and an unchanged source tree is never rebuilt.
    """
    kbuild = target.kbuild_dir
    sources = sorted(p for p in MODULES_DIR.iterdir() if p.is_file())
    digest = hashlib.sha256(str(kbuild).encode())
    for src in sources:
        digest.update(src.name.encode() + src.read_bytes())
    root = cache_dir() / "modules"
    build_dir = root / f"{target.release}-{digest.hexdigest()[:16]}"
    if (build_dir / ".wqkit-built").exists():
        return build_dir
    progress(f"building modules for {target.release}")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.release}-", dir=root))
    try:
        for src in sources:
            shutil.copy2(src, work)
        proc = subprocess.run(["make", "-C", str(work), f"KDIR={kbuild}"], capture_output=True, text=True)
        if proc.returncode:
            errors = [ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if "error" in ln.lower()]
            raise WqkitError(f"module build failed for {target.release}: "
                             f"{(errors or ['see make output'])[0].strip()}")
        (work / ".wqkit-built").touch()
        try:
            work.rename(build_dir)
        except OSError:     # another process finished the same build first: use it
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune(root, target.release, keep=build_dir)
    return build_dir


def _prune(root: Path, release: str, keep: Path, count: int = 3) -> None:
    """Keep the newest ``count`` module builds of ``release`` (and ``keep``)."""
    builds = sorted((p for p in root.glob(f"{release}-*") if p != keep), key=lambda p: p.stat().st_mtime)
    for old in builds[:-count + 1] if count > 1 else builds:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class LoadedModule:
    """A module loaded on a target; ``dmesg()`` gives its kernel log since loading."""

    target: Target
    name: str
    params: dict[str, str]
    _log_mark: str

    def dmesg(self) -> list[str]:
        return log_since(self.target, self._log_mark)


def kernel_log(target: Target) -> list[str]:
    """The target's kernel log, one line per entry."""
    return target.run("dmesg", check=True).stdout.splitlines()


def log_mark(target: Target) -> str:
    """A place in the target's kernel log, for :func:`log_since`: its last line (timestamped to
    the µs by dmesg, so unique), or "" for an empty log.

    Not a line count: once the ring buffer is full (a chatty module: one line per
    write of its run parameter, thousands of writes), every new line pushes out
    an old one and the count stops growing.
    """
    return target.run("dmesg | tail -n 1", check=True).stdout.rstrip("\n")


def log_since(target: Target, mark: str) -> list[str]:
    """The target's kernel log after ``mark``. A ring buffer that wrapped past the mark dropped
    its oldest lines first: what it still holds is all newer."""
    lines = kernel_log(target)
    for index in range(len(lines) - 1, -1, -1):
        if lines[index] == mark:
            return lines[index + 1:]
    return lines


def is_loaded(target: Target, name: str) -> bool:
    """Whether ``name`` is in the target's module list."""
    return target.run(f"grep -q {quote('^' + name + ' ')} /proc/modules").returncode == 0


@contextmanager
def loaded(target: Target, name: str, params: Mapping[str, object] | None = None,
           progress=print) -> Iterator[LoadedModule]:
    """Build, load and (always) unload module ``name`` with ``params`` on ``target``."""
    spec = module_spec(name)
    args = spec.insmod_args(params or {})
    ko = build(target, progress) / f"{name}.ko"
    if is_loaded(target, name):
        raise WqkitError(f"{name} is already loaded on the {target.name} target; unload it first")
    mark = log_mark(target)
    result = target.run(" ".join(["insmod", quote(str(ko)), *args]))
    if result.returncode:
        log = log_since(target, mark)
        reason = (result.stderr.strip().splitlines() or ["insmod failed"])[-1]
        detail = f"; kernel log: {log[-1].strip()}" if log else ""
        raise WqkitError(f"loading {name} {' '.join(args)} failed: {reason}{detail}")
    module = LoadedModule(target, name, dict(a.split("=", 1) for a in args), mark)
    try:
        yield module
    finally:
        _unload(target, name)


def _unload(target: Target, name: str) -> None:
    """rmmod if loaded; a lab VM that died (panic, hang) took the module with it."""
    try:
        if is_loaded(target, name):
            target.run(f"rmmod {quote(name)}", check=True)
    except LabError:
        if target.alive:
            raise
