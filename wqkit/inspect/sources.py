"""One way to get snapshots, whatever the source: the lab, the running kernel or a vmcore."""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Callable

from wqkit.inspect.model import Snapshot
from wqkit.inspect.snapshot import take_snapshot
from wqkit.inspect.source import open_program


def snapshot_source(target: str = "lab", core: str | Path = "", vmlinux: str | Path = "",
                    **lab_options) -> Callable[[], Snapshot]:
    """A function returning a fresh snapshot each call.

    ``core`` (with ``vmlinux``) reads a vmcore; ``target="local"`` the
    running kernel; ``target="lab"`` boots a lab VM, kept until the process
    exits, with drgn inside it.
    """
    if core or target == "local":
        prog = open_program(core=Path(core) if core else None, vmlinux=Path(vmlinux) if vmlinux else None)
        return lambda: take_snapshot(prog)
    from wqkit.inspect.lab import LabInspector
    from wqkit.target import make_target

    lab = make_target(target, **lab_options)
    atexit.register(lab.close)
    return LabInspector(lab).snapshot
