"""How QEMU starts the lab's kernel: straight into the uncompressed vmlinux when it can.

virtme-ng boots the compressed image (bzImage) through SeaBIOS: the firmware's
set-up, then the kernel decompressing itself, all emulated under TCG, about a
second before the kernel's clock starts. A kernel built with CONFIG_PVH has a
32-bit entry point QEMU can jump to in the uncompressed ``vmlinux`` (the debug
vmlinux the lab keeps anyway: QEMU loads only its loadable segments), and
qboot, QEMU's minimal firmware, does just what that boot needs. Measured under
TCG: 1.1 s of host-side boot with SeaBIOS and the bzImage, 0.35 s with qboot
and PVH (benchmarks/lab_speed.py). Without a PVH note or qboot, the lab boots
as virtme-ng does. The kernel's image is then not randomized (KASLR is done by
the decompressor); its memory regions still are.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

#: QEMU's minimal firmware (Debian's qemu-system-data).
QBOOT = Path("/usr/share/qemu/qboot.rom")
#: The ELF note that gives a kernel's PVH entry point (Xen's XEN_ELFNOTE_PHYS32_ENTRY).
_PVH_NOTE = (b"Xen", 18)
_PT_NOTE = 4


@lru_cache(maxsize=16)
def has_pvh_entry(vmlinux: Path, _mtime_ns: int = 0) -> bool:
    """Whether an ELF kernel has a PVH entry note (read from its program headers only)."""
    try:
        with open(vmlinux, "rb") as f:
            header = f.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2:      # 64-bit ELF
                return False
            phoff, = struct.unpack_from("<Q", header, 32)
            phentsize, phnum = struct.unpack_from("<HH", header, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
                if p_type == _PT_NOTE:
                    f.seek(p_offset)
                    if _PVH_NOTE in _notes(f.read(p_filesz)):
                        return True
    except OSError:
        return False
    return False


def _notes(data: bytes) -> set[tuple[bytes, int]]:
    """(name, type) of each ELF note in a PT_NOTE segment."""
    found, position = set(), 0
    while position + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, position)
        name = data[position + 12:position + 12 + namesz].rstrip(b"\0")
        found.add((name, kind))
        position += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return found


def direct_boot(qemu: list[str], vmlinux: Path) -> tuple[list[str], str]:
    """``qemu`` (virtme-ng's command) changed to boot ``vmlinux`` through its PVH entry with
    qboot, when both are there; and how it boots (``pvh+qboot``, or ``bzimage`` unchanged)."""
    vmlinux = Path(vmlinux)
    if not (QBOOT.is_file() and vmlinux.is_file() and has_pvh_entry(vmlinux, vmlinux.stat().st_mtime_ns)):
        return qemu, "bzimage"
    changed = list(qemu)
    changed[changed.index("-kernel") + 1] = str(vmlinux)
    changed[1:1] = ["-bios", str(QBOOT)]
    return changed, "pvh+qboot"
