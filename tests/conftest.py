"""Shared fixtures: one lab boot for every test that can share it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wqkit.lab import LabSession
from wqkit.target import LabTarget


def qemu_processes(marker: Path) -> list[int]:
    """PIDs of live QEMU processes whose command line mentions ``marker``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and str(marker) in cmdline and int(proc.name) != os.getpid():
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="session")
def lab() -> LabSession:
    """A lab session booted once for the whole test run."""
    with LabSession() as session:
        yield session


@pytest.fixture(scope="session")
def lab_target(lab: LabSession) -> LabTarget:
    """The shared lab session as a Target (not closed by the tests that use it)."""
    return LabTarget(session=lab)


def assert_unloaded_cleanly(target, module: str, log_mark: str) -> None:
    """``module`` is gone, said so in the kernel log, and the log since ``log_mark`` has no warning."""
    from wqkit import kmod

    assert not kmod.is_loaded(target, module)
    log = "\n".join(kmod.log_since(target, log_mark))
    assert f"{module}: unloaded" in log
    for bad in ("BUG", "WARNING", "Oops", "leak", "general protection"):
        assert bad not in log


def assert_flood_workers_traced(meta: dict, events, engine: str) -> set[int]:
    """``engine`` saw every kworker that appeared in the guest during the flood being created, and on
    the flooded pool (its new workers ran the flood's items) exactly those, besides workers the
    kernel created between the tracers' attach and the guest's listing before the flood (they
    were already listed). Elsewhere the kernel may create a worker after the last listing.
    Returns the pids of the flood's new workers."""
    appeared, before = set(meta["truth"]["new_kworkers"]), set(meta["truth"]["kworkers_before"])
    mine = events[events["engine"] == engine]
    created = mine[mine["event"] == "CREATE"]
    assert appeared <= set(created["pid"].astype(int)) and len(appeared) >= 4
    flooded = set(created.loc[created["pid"].isin(mine.loc[mine["event"] == "FIRST", "pid"]), "pool"])
    assert len(flooded) == 1
    assert set(created.loc[created["pool"].isin(flooded), "pid"].astype(int)) - before == appeared
    return appeared
