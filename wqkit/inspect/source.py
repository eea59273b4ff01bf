"""Where a drgn program comes from: the live kernel, a vmcore, or a running QEMU guest
read from the host over QMP; always with the kernel's DWARF debug info."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import drgn

from wqkit.errors import WqkitError


def open_program(core: Path | None = None, vmlinux: Path | None = None) -> drgn.Program:
    """A drgn program on a vmcore (``core``) or on the running kernel, with DWARF debug info.

    ``vmlinux`` is the kernel's debug vmlinux; without it drgn looks in the
    usual places (it must match the kernel exactly).
    """
    if vmlinux is not None and not Path(vmlinux).is_file():
        raise WqkitError(f"{vmlinux}: no such debug vmlinux")
    prog = drgn.Program()
    if core is not None:
        if not Path(core).is_file():
            raise WqkitError(f"{core}: no such vmcore")
        try:
            prog.set_core_dump(str(core))
        except (OSError, ValueError, drgn.FaultError) as exc:
            raise WqkitError(f"{core}: not a readable vmcore ({exc})") from None
    else:
        if os.geteuid() != 0:
            raise WqkitError("inspecting the running kernel needs root (/proc/kcore)")
        if not Path("/proc/kcore").exists():
            raise WqkitError("the running kernel has no /proc/kcore (CONFIG_PROC_KCORE); use --target lab")
        prog.set_kernel()
    try:
        if vmlinux is not None:
            prog.load_debug_info([str(vmlinux)], main=True)
        else:
            prog.load_default_debug_info()
    except drgn.MissingDebugInfoError as exc:
        if vmlinux is None or "vmlinux" in str(exc).split(":")[0]:
            raise WqkitError(f"missing kernel debug info ({str(exc).splitlines()[0]}); give --vmlinux") from None
    _check_workqueue_types(prog)
    return prog


def attach_qmp(socket: Path) -> drgn.Program:
    """A drgn program on a running QEMU guest, read from the host through its QMP socket,
    without debug info: enough to read kernel memory at an address (drgn walks the page
    tables from the guest's vmcoreinfo), in a fraction of the time debug info takes.

    The guest must publish its vmcoreinfo (QEMU's ``-device vmcoreinfo`` and
    a kernel with CONFIG_FW_CFG_SYSFS), so that drgn finds the kernel and its
    KASLR offset. Nothing runs in the guest: each read is a QMP memory read.
    """
    prog = drgn.Program()
    try:
        prog.set_qemu_qmp(str(socket))
    except OSError as exc:
        raise WqkitError(f"no QEMU answers on {socket} ({exc.strerror or exc})") from None
    except (ValueError, drgn.FaultError) as exc:
        raise WqkitError(f"{socket}: cannot read the guest over QMP ({exc})") from None
    if not prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        raise WqkitError(f"{socket}: the guest published no vmcoreinfo (start QEMU with -device vmcoreinfo, "
                         "and a guest kernel with CONFIG_FW_CFG_SYSFS)")
    return prog


def load_vmlinux(prog: drgn.Program, vmlinux: Path) -> None:
    """Load the guest kernel's debug vmlinux into a program from :func:`attach_qmp`."""
    if not Path(vmlinux).is_file():
        raise WqkitError(f"{vmlinux}: no such debug vmlinux")
    drgn_log = logging.getLogger("drgn")
    level = drgn_log.level
    drgn_log.setLevel(logging.ERROR)    # drgn logs a mismatched file as a warning; we say it below
    try:
        prog.load_debug_info([str(vmlinux)], main=True)
    except drgn.MissingDebugInfoError:
        raise WqkitError(f"{vmlinux} does not match the guest's kernel "
                         f"({_vmcoreinfo_release(prog) or 'unknown release'})") from None
    finally:
        drgn_log.setLevel(level)
    _check_workqueue_types(prog)


def _vmcoreinfo_release(prog: drgn.Program) -> str | None:
    """The guest kernel's release, which drgn takes from its vmcoreinfo (``UTS_RELEASE``)."""
    try:
        return prog["UTS_RELEASE"].string_().decode()
    except (KeyError, LookupError, drgn.FaultError, UnicodeDecodeError):
        return None


def _check_workqueue_types(prog: drgn.Program) -> None:
    try:
        prog.type("struct workqueue_struct")
    except LookupError:
        raise WqkitError("the debug info has no struct workqueue_struct: wrong or stripped vmlinux") from None
