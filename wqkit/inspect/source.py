"""Where a drgn program comes from: the live kernel or a vmcore, with debug info."""

from __future__ import annotations

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
    try:
        prog.type("struct workqueue_struct")
    except LookupError:
        raise WqkitError("the debug info has no struct workqueue_struct: wrong or stripped vmlinux") from None
    return prog
