"""Where a drgn program comes from: the live kernel, a vmcore, or a running QEMU guest
read from the host (its RAM mapped directly, or over QMP); always with the kernel's DWARF debug info."""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import drgn

from wqkit.errors import WqkitError

if TYPE_CHECKING:
    from wqkit.lab.guest_ram import GuestRam


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


def attach_ram(ram: GuestRam, vmcoreinfo_paddr: int) -> drgn.Program:
    """A drgn program on a running lab guest whose RAM the host has mapped
    (wqkit.lab.guest_ram): every read is a copy out of the mapping, at memory speed.

    ``vmcoreinfo_paddr`` is where the guest kernel keeps its VMCOREINFO note
    (``/sys/kernel/vmcoreinfo``): drgn finds the kernel, its KASLR offset and its
    page tables from it, as from a vmcore.
    """
    prog = drgn.Program(drgn.Platform(drgn.Architecture.X86_64,
                                      drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN))
    for seg in ram.segments:
        prog.add_memory_segment(seg.gpa, seg.size, _segment_reader(seg.view), physical=True)
    try:
        prog.set_linux_kernel_custom(vmcoreinfo_note(ram.read(vmcoreinfo_paddr, 4096)), True)
    except ValueError as exc:
        raise WqkitError(f"the guest's VMCOREINFO note at {vmcoreinfo_paddr:#x} does not parse ({exc})") from None
    return prog


def map_direct(prog: drgn.Program, ram: GuestRam) -> None:
    """Give a program from :func:`attach_ram`, once its debug info is loaded, the kernel's direct
    map of RAM as virtual segments: a read of a kmalloc'ed structure then goes straight to the
    mapping instead of through a page-table walk (a snapshot: 1.0 ms to 0.6 ms here). Other
    kernel addresses (the image, vmalloc, per-CPU areas) are still translated by drgn."""
    page_offset = prog["page_offset_base"].value_()
    for seg in ram.segments:
        prog.add_memory_segment(page_offset + seg.gpa, seg.size, _segment_reader(seg.view), physical=False)


def _segment_reader(view: memoryview):
    """drgn's read callback for one mapped segment: a slice of the mapping (drgn copies it)."""
    def read(_address: int, count: int, offset: int, _physical: bool) -> memoryview:
        return view[offset:offset + count]
    return read


def vmcoreinfo_note(raw: bytes | memoryview) -> bytes:
    """The text of an ELF ``VMCOREINFO`` note (its header first, as the kernel keeps it)."""
    namesz, descsz, _type = struct.unpack_from("<III", raw)
    name = bytes(raw[12:12 + namesz]).rstrip(b"\0")
    if name != b"VMCOREINFO" or descsz > len(raw):
        raise WqkitError(f"no VMCOREINFO note where the guest said (name {name[:16]!r}, {descsz} bytes)")
    start = 12 + (namesz + 3) // 4 * 4
    return bytes(raw[start:start + descsz])


def load_vmlinux(prog: drgn.Program, vmlinux: Path) -> None:
    """Load the guest kernel's debug vmlinux into a program from :func:`attach_ram` or :func:`attach_qmp`."""
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
