"""One way to get snapshots, whatever the source: the lab, the running kernel or a vmcore."""

from __future__ import annotations

import atexit
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import drgn

from wqkit.errors import WqkitError
from wqkit.inspect.model import Snapshot
from wqkit.inspect.snapshot import take_snapshot
from wqkit.inspect.source import open_program
from wqkit.target import LabTarget, Target


def snapshot_source(target: str = "lab", core: str | Path = "", vmlinux: str | Path = "", via: str = "ram",
                    consistent: bool = False, qmp: str | Path = "", qmp_control: str | Path = "",
                    progress: Callable[[str], None] = print, **lab_options) -> Callable[[], Snapshot]:
    """A function returning a fresh snapshot each call.

    ``core`` (with ``vmlinux``) reads a vmcore; ``qmp`` (with ``vmlinux``) any
    QEMU guest started with ``-qmp unix:SOCKET,server=on`` and ``-device
    vmcoreinfo`` (``qmp_control``: a second socket of it, for ``consistent``);
    ``target="local"`` the running kernel; ``target="lab"`` boots a lab VM, kept
    until the process exits, read from the host through its RAM mapped here
    (``via="ram"``, the default) or over QMP (``via="qmp"``) (with
    ``consistent`` the guest is stopped around each read), by drgn inside the
    guest (``via="guest"``) or from memory dumps (``via="vmcore"``).
    """
    if qmp:
        from wqkit.inspect.lab import HostInspector

        if not vmlinux:
            raise WqkitError("--qmp needs --vmlinux, the guest kernel's debug vmlinux")
        return HostInspector.for_qmp(Path(qmp), Path(vmlinux), Path(qmp_control) if qmp_control else None,
                                     consistent).snapshot
    if core or target == "local":
        prog = open_program(core=Path(core) if core else None, vmlinux=Path(vmlinux) if vmlinux else None)
        return lambda: take_snapshot(prog)
    from wqkit.inspect.lab import VIAS, LabInspector, HostInspector, vmcore_snapshot
    from wqkit.target import make_target

    if via not in VIAS:
        raise WqkitError(f"unknown --via {via!r}: choose one of {', '.join(VIAS)}")
    lab = make_target(target, **lab_options)
    atexit.register(lab.close)
    if via in ("ram", "qmp"):
        return HostInspector.for_lab(lab, consistent=consistent, via=via).snapshot
    if via == "vmcore":
        return lambda: vmcore_snapshot(lab, lab.session.workdir / "snapshot.vmcore")
    progress("loading the lab kernel's debug info in the guest (~25 s under TCG)")
    return LabInspector(lab).snapshot


@contextmanager
def target_program(target: Target) -> Iterator[drgn.Program]:
    """A drgn program on an open target's kernel, for reads no other thread interleaves with:
    the lab's, read from the host (shared by the session's readers, see HostInspector.reading), or the
    running kernel's (/proc/kcore: root and the kernel's debug info)."""
    if isinstance(target, LabTarget):
        from wqkit.inspect.lab import HostInspector

        with HostInspector.for_lab(target).reading() as prog:
            yield prog
    else:
        yield open_program()
