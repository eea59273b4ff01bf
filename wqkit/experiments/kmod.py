"""Kernel module control: build wqkit's modules for a target, load, always unload.

Parameters are validated against the module's declaration (wqkit.experiments.spec)
before ``insmod``, and again by the module itself (its generated header), which
answers ``-EINVAL`` with a ``pr_err``. :func:`loaded` unloads
the module whatever happens in its ``with`` block and, when loading fails,
puts the module's kernel log lines in the error.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from shlex import quote
from typing import Iterator, Mapping

from wqkit.errors import LabError, WqkitError
from wqkit.experiments import cgen
from wqkit.experiments.spec import module_spec, modules
from wqkit.paths import MODULES_DIR, cache_dir
from wqkit.target import Target

#: The files of a module directory that a build copies (besides Kbuild and Makefile).
SOURCE_SUFFIXES = (".c", ".h", ".toml")


def build_sources() -> dict[str, bytes]:
    """What a module build compiles, by file name: the repository's ``modules/`` (sources,
    declarations, Kbuild files), each external experiment's directory, and the files
    generated from the declarations (wqkit.experiments.cgen), written last so that make
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
    if (build_dir / ".wqkit-built").exists():
        return build_dir
    progress(f"building modules for {target.release}")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.release}-", dir=root))
    try:
        for name, data in sources.items():
            (work / name).write_bytes(data)
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
