"""Kernel module control: build wqkit's modules for a target, load, always unload.

Parameters are validated against the module's declaration (wqkit.runs.spec)
before ``insmod``, and again by the module itself (its generated header), which
answers ``-EINVAL`` with a ``pr_err``. :func:`loaded` unloads
the module whatever happens in its ``with`` block and, when loading fails,
puts the module's kernel log lines in the error. Once the module is unloaded,
the kernel log since loading is searched for reports of a kernel in trouble
(wqkit.lab.splats: KASAN, lockdep, ODEBUG, BUG, WARN...) and, on a kernel with
kmemleak (the debug lab kernel), for objects leaked meanwhile; any is an error
(:class:`KernelSplats`) naming the first.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

from wqkit.errors import LabError, WqkitError
from wqkit.runs import cgen
from wqkit.runs.spec import module_spec, modules
from wqkit.lab.splats import Splat, module_splats
from wqkit.paths import MODULES_DIR, cache_dir
from wqkit.target import Target

#: The files of a module directory that a build copies (besides Kbuild and Makefile).
SOURCE_SUFFIXES = (".c", ".h", ".toml")
#: kmemleak's control and report file, on a kernel built with it.
KMEMLEAK = "/sys/kernel/debug/kmemleak"
#: Seconds before kmemleak reports an object (its jiffies_min_age: younger ones may still be in use).
KMEMLEAK_MIN_AGE = 5
#: Guest file (tmpfs: one per boot) saying this boot's leak suspects were already scanned for.
KMEMLEAK_BASELINED = "/run/wqkit-kmemleak-baselined"


def build_sources() -> dict[str, bytes]:
    """What a module build compiles, by file name: the repository's ``modules/`` (sources,
    declarations, Kbuild files), each external experiment's directory, and the files
    generated from the declarations (wqkit.runs.cgen), written last so that make
    finds them up to date."""
    specs = list(modules().values())
    dirs = [MODULES_DIR] + sorted({s.directory for s in specs if s.external})
    files: dict[str, bytes] = {}
    generated = cgen.generated(specs)
    for directory in dirs:
        for path in sorted(directory.iterdir()):
            if not path.is_file() or path.name in generated or not (
                    path.suffix in SOURCE_SUFFIXES or path.name in ("Kbuild", "Makefile")):
                continue
            if path.name in files:
                raise WqkitError(f"{path}: a file of that name is already in the build ({', '.join(map(str, dirs))}); "
                                 "rename it")
            files[path.name] = path.read_bytes()
    files.update({name: text.encode() for name, text in generated.items()})
    return files


def build(target: Target, progress=print) -> Path:
    """Build every module wqkit knows (the repository's and the external experiments') for the
    target's kernel; return the build dir.

    Sources and generated headers are written to ``CACHE/modules/RELEASE-DIGEST``
    (the digest of them all and of the Kbuild directory) and built there with
    ``make KDIR=...``. A build happens in a private temporary directory renamed
    into place when complete, so concurrent wqkit processes never build in the
    same place, and an unchanged source tree is never rebuilt.
    """
    kbuild = target.kbuild_dir
    sources = build_sources()
    digest = hashlib.sha256(str(kbuild).encode())
    for name, data in sorted(sources.items()):
        digest.update(name.encode() + data)
    root = cache_dir() / "modules"
    build_dir = root / f"{target.release}-{digest.hexdigest()[:16]}"
    if (build_dir / BUILT_MARK).exists():
        return build_dir
    progress(f"building modules for {target.release}")
    build_once(build_dir, sources, lambda work: ["make", "-C", str(work), f"KDIR={kbuild}"],
               f"module build failed for {target.release}")
    _prune(root, target.release, keep=build_dir)
    return build_dir


#: The file a complete build directory holds.
BUILT_MARK = ".wqkit-built"


def build_once(build_dir: Path, files: Mapping[str, bytes], make: Callable[[Path], list[str]], failed: str) -> None:
    """Write ``files`` into a private temporary directory beside ``build_dir``, run ``make(work)``
    there and rename it to ``build_dir`` (marked BUILT_MARK) once complete: concurrent wqkit
    processes never build in the same place. A failure is a one-line error, ``failed`` and make's
    first error line."""
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{build_dir.name}-", dir=build_dir.parent))
    try:
        for name, data in files.items():
            (work / name).write_bytes(data)
        proc = subprocess.run(make(work), capture_output=True, text=True)
        if proc.returncode:
            errors = [ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if "error" in ln.lower()]
            raise WqkitError(f"{failed}: {(errors or ['see make output'])[0].strip()}")
        (work / BUILT_MARK).touch()
        try:
            work.rename(build_dir)
        except OSError:     # another process finished the same build first: use it
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prune(root: Path, release: str, keep: Path, count: int = 3) -> None:
    """Keep the newest ``count`` module builds of ``release`` (and ``keep``)."""
    builds = sorted((p for p in root.glob(f"{release}-*") if p != keep), key=lambda p: p.stat().st_mtime)
    for old in builds[:-count + 1] if count > 1 else builds:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class LoadedModule:
    """A module loaded on a target; ``dmesg()`` gives its kernel log since loading. Once it is
    unloaded, ``splats`` holds what the kernel reported meanwhile (and kmemleak, if it runs)."""

    target: Target
    name: str
    params: dict[str, str]
    _log_mark: int
    #: Whether the kernel has kmemleak, baselined before loading: leaks are looked for after unloading.
    leak_check: bool = False
    #: When kmemleak's scan just before unloading started (its first look at what the module allocated).
    primed_at: float | None = None
    splats: list[Splat] = field(default_factory=list)
    #: KCSAN reports of races between other kernel code only: recorded, not the module's.
    races_elsewhere: list[Splat] = field(default_factory=list)
    #: Once unloaded: the kernel log from loading to unloading.
    log: list[str] = field(default_factory=list)

    def dmesg(self) -> list[str]:
        return log_since(self.target, self._log_mark)

    def check_after_unload(self) -> list[Splat]:
        """The reports in the kernel log since loading, and each object kmemleak finds leaked."""
        self.log = self.dmesg()
        leaks = kmemleak_leaks(self.target, self.primed_at) if self.primed_at is not None else []
        self.splats, self.races_elsewhere = module_splats(self.log + leaks, self.name)
        return self.splats


class KernelSplats(WqkitError):
    """The kernel reported trouble while a module was loaded or being unloaded."""

    def __init__(self, module: LoadedModule):
        first = module.splats[0]
        more = f" (and {len(module.splats) - 1} more report(s))" if len(module.splats) > 1 else ""
        super().__init__(f"the kernel reported {first.kind} while {module.name} was loaded: {first.line}{more}")
        self.splats = module.splats


def kmemleak_baseline(target: Target) -> None:
    """Forget the leak suspects found so far, so that a later scan reports only what leaked
    after it. A boot's first baseline scans twice first (a scan spares an object whose content
    changed since the previous one); a scan takes seconds under TCG, so later loads only clear."""
    if not target.exists(KMEMLEAK_BASELINED):
        for _ in range(2):
            target.write(KMEMLEAK, "scan", timeout=300)
        target.write(KMEMLEAK_BASELINED, "", create=True)
    target.write(KMEMLEAK, "clear")


def prepare_load(target: Target, name: str) -> tuple[bool, int]:
    """Before loading ``name``: refuse it when already loaded, take kmemleak's baseline when
    the kernel has kmemleak, and mark the kernel log. Returns (leak check, mark)."""
    if is_loaded(target, name):
        raise WqkitError(f"{name} is already loaded on the {target.name} target; unload it first")
    leak_check = target.exists(KMEMLEAK)
    if leak_check:
        kmemleak_baseline(target)
    return leak_check, log_mark(target)


def kmemleak_scan(target: Target) -> float:
    """One kmemleak scan; returns when it started (time.monotonic())."""
    started = time.monotonic()
    target.write(KMEMLEAK, "scan", timeout=300)
    return started


def kmemleak_leaks(target: Target, primed_at: float) -> list[str]:
    """kmemleak's report after a second scan (the first, ``primed_at``, took the checksums of
    what was allocated), at least KMEMLEAK_MIN_AGE after it: the objects unreferenced now."""
    time.sleep(max(0.0, primed_at + KMEMLEAK_MIN_AGE - time.monotonic()))
    target.write(KMEMLEAK, "scan", timeout=300)
    return target.read(KMEMLEAK).splitlines()


def vermagic(ko: Path) -> str:
    """A module file's vermagic (its kernel release first, then SMP, preempt...): its .modinfo
    section's ``vermagic=`` string."""
    found = re.search(rb"\0vermagic=([^\0]*)\0", ko.read_bytes())
    if found is None:
        raise WqkitError(f"{ko}: no vermagic in its .modinfo: not a kernel module")
    return found.group(1).decode(errors="replace").strip()


def check_built_for(ko: Path, target: Target) -> str:
    """``ko``'s vermagic, or a one-line error unless it was built for the kernel ``target`` runs
    (its vermagic's release): a stale build must not reach a running kernel."""
    magic = vermagic(ko)
    built_for = magic.split(" ", 1)[0]
    if built_for != target.release:
        raise WqkitError(f"{ko.name} was built for kernel {built_for!r}, but the {target.name} target runs "
                         f"{target.release!r}: refusing to load it")
    return magic


def log_mark(target: Target) -> int:
    """A place in the target's kernel log, for :func:`log_since`: the number its next record
    will get (/dev/kmsg numbers every record, also once the ring buffer has wrapped)."""
    return target.kernel_log(since=sys.maxsize)[1]


def log_since(target: Target, mark: int) -> list[str]:
    """The target's kernel log lines after ``mark``. A ring buffer that wrapped past the mark
    dropped its oldest lines first: what it still holds is all newer."""
    return target.kernel_log(since=mark)[0]


def is_loaded(target: Target, name: str) -> bool:
    """Whether ``name`` is in the target's module list."""
    return any(line.split(" ", 1)[0] == name for line in target.read("/proc/modules").splitlines())


@contextmanager
def loaded(target: Target, name: str, params: Mapping[str, object] | None = None,
           progress=print, report_dir: Path | None = None) -> Iterator[LoadedModule]:
    """Build, load and (always) unload module ``name`` with ``params`` on ``target``; then check
    the kernel's reports (:class:`KernelSplats` when there are any, once the block succeeded).
    With ``report_dir``, the kernel log since loading and its reports are kept there."""
    spec = module_spec(name)
    args = spec.insmod_args(params or {})
    ko = build(target, progress) / f"{name}.ko"
    magic = check_built_for(ko, target)
    if target.runs_this_machine:
        progress(f"loading {name} {' '.join(args)} ({ko}, vermagic {magic!r}) into the running kernel "
                 f"{target.release} of this machine")
    leak_check, mark = prepare_load(target, name)
    error = target.load_module(str(ko), args)
    if error:
        log = log_since(target, mark)
        detail = f"; kernel log: {log[-1].strip()}" if log else ""
        raise WqkitError(f"loading {name} {' '.join(args)} failed: {error}{detail}")
    module = LoadedModule(target, name, dict(a.split("=", 1) for a in args), mark, leak_check)
    try:
        yield module
    finally:
        if leak_check and target.alive:
            module.primed_at = kmemleak_scan(target)
        _unload(target, name)
        if target.alive:
            module.check_after_unload()
            if report_dir is not None:
                _keep_log(module, report_dir)
    if module.splats:
        raise KernelSplats(module)


def _keep_log(module: LoadedModule, report_dir: Path) -> None:
    """Write the kernel log since loading (``dmesg.txt``) and, when there are any, its reports
    and kmemleak's (``splats.txt``) into ``report_dir``."""
    (report_dir / "dmesg.txt").write_text("\n".join(module.log) + "\n")
    reports = [str(s) for s in module.splats]
    reports += [f"(a data race in other kernel code, not {module.name}'s)\n{s}" for s in module.races_elsewhere]
    if reports:
        (report_dir / "splats.txt").write_text("\n\n".join(reports) + "\n")


def _unload(target: Target, name: str) -> None:
    """Unload if loaded; a lab VM that died (panic, hang) took the module with it."""
    try:
        error = target.unload_module(name)
        if error and is_loaded(target, name):
            raise WqkitError(f"could not unload {name} from the {target.name} target: {error}")
    except LabError:
        if target.alive:
            raise
