"""Debian's Linux sources, fetched once: checkpatch (from 6.12) and the kernels wqkit builds.

6.12 comes from bookworm-backports (the machine's own apt sources, set up by
``make setup``); 7.3 from trixie-backports, read through a private apt
configuration (:func:`wqkit.lab.debian.suite_options`): trixie's packaged
kernel cannot take modules here (its kbuild tools need trixie's glibc), so
wqkit builds 7.3 from its source as it builds 6.12."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

from wqkit.lab.debian import extract_from_package
from wqkit.errors import WqkitError
from wqkit.paths import cache_dir

#: The series wqkit builds, and the Debian suite each source package comes from
#: (None: the machine's own apt sources).
SOURCE_SUITES: dict[str, str | None] = {"6.12": None, "7.3": "trixie-backports"}
#: The series checkpatch and the default builds come from.
DEFAULT_SERIES = "6.12"
CHECKPATCH_FILES = ("scripts/checkpatch.pl", "scripts/spelling.txt", "scripts/const_structs.checkpatch")


def built_only(series: str) -> bool:
    """Whether ``series`` is a kernel wqkit can only build (its packages come from a foreign suite)."""
    return SOURCE_SUITES.get(series) is not None


def source_package(series: str) -> str:
    """Debian's source package of ``series``, or a one-line error naming the ones wqkit builds."""
    if series not in SOURCE_SUITES:
        raise WqkitError(f"wqkit builds Linux {', '.join(SOURCE_SUITES)}, not {series!r}")
    return f"linux-source-{series}"


def source_tarball(progress: Callable[[str], None] = print, series: str = DEFAULT_SERIES) -> Path:
    """``linux-source-SERIES.tar.xz`` from Debian, in the cache."""
    package = source_package(series)
    return extract_from_package(package, f"./usr/src/{package}.tar.xz",
                                cache_dir() / "kernel-source" / f"{package}.tar.xz", progress,
                                suite=SOURCE_SUITES[series])


def checkpatch(progress: Callable[[str], None] = print) -> Path:
    """The path of the 6.12 tree's ``scripts/checkpatch.pl`` (with its data files)."""
    root = cache_dir() / "kernel-source" / "checkpatch"
    script = root / CHECKPATCH_FILES[0]
    if script.is_file():
        return script
    tarball = source_tarball(progress)
    root.mkdir(parents=True, exist_ok=True)
    members = [f"{source_package(DEFAULT_SERIES)}/{name}" for name in CHECKPATCH_FILES]
    proc = subprocess.run(["tar", "-xJf", str(tarball), "-C", str(root), "--strip-components=1", *members],
                          capture_output=True, text=True)
    if proc.returncode:
        raise WqkitError(f"could not extract checkpatch from {tarball.name}: {proc.stderr.strip()}")
    return script


def run_checkpatch(files: list[Path]) -> subprocess.CompletedProcess:
    """``checkpatch.pl --no-tree`` on source files (``-f``) or patches (``*.patch``)."""
    patches = [f for f in files if f.suffix == ".patch"]
    sources = [f for f in files if f.suffix != ".patch"]
    args = [str(checkpatch()), "--no-tree", "--terse", "--show-types"]
    out = []
    for group, extra in ((sources, ["-f"]), (patches, [])):
        if group:
            out.append(subprocess.run(["perl", *args, *extra, *map(str, group)], capture_output=True, text=True))
    return subprocess.CompletedProcess(args, max((p.returncode for p in out), default=0),
                                       "".join(p.stdout for p in out), "".join(p.stderr for p in out))
