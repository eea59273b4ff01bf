"""Debian's Linux 6.12 source, fetched once: checkpatch now, patched kernels later."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

from wqkit.lab.debian import extract_from_package
from wqkit.errors import WqkitError
from wqkit.paths import cache_dir

SOURCE_PACKAGE = "linux-source-6.12"
CHECKPATCH_FILES = ("scripts/checkpatch.pl", "scripts/spelling.txt", "scripts/const_structs.checkpatch")


def source_tarball(progress: Callable[[str], None] = print) -> Path:
    """``linux-source-6.12.tar.xz`` from Debian, in the cache."""
    return extract_from_package(SOURCE_PACKAGE, f"./usr/src/{SOURCE_PACKAGE}.tar.xz",
                                cache_dir() / "kernel-source" / f"{SOURCE_PACKAGE}.tar.xz", progress)


def checkpatch(progress: Callable[[str], None] = print) -> Path:
    """The path of the 6.12 tree's ``scripts/checkpatch.pl`` (with its data files)."""
    root = cache_dir() / "kernel-source" / "checkpatch"
    script = root / CHECKPATCH_FILES[0]
    if script.is_file():
        return script
    tarball = source_tarball(progress)
    root.mkdir(parents=True, exist_ok=True)
    members = [f"{SOURCE_PACKAGE}/{name}" for name in CHECKPATCH_FILES]
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
