"""The lab guest's RAM, mapped read-only into the host process.

The lab's QEMU keeps guest RAM in shareable memfd backends (:func:`backend_options`),
so the host can map the very pages the guest runs on and read them at memory
speed: no QMP round trip, no hex dump, no copy. Where each guest-physical range
lives comes from QEMU itself, never from a guess about the machine model:

- ``info mtree -f``: the flat view of the guest's ``memory`` address space, its
  RAM and ROM ranges (below 4 GiB, above it, the BIOS shadow holes...);
- ``gpa2hva``: the host virtual address QEMU maps each range's start at;
- ``/proc/QEMU_PID/maps`` and ``/proc/QEMU_PID/fd``: the memfd behind that
  address and the offset in it; the host opens the memfd through ``/proc`` (same
  user as QEMU; no ptrace attach needed) and maps it read-only.

Reads are not atomic with respect to the running guest: a reader that needs one
moment of the guest stops its vCPUs around the read (see wqkit.lab.qmp.Pause).
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from wqkit.errors import LabError

#: QEMU's id of the lab's RAM backend when the guest has one NUMA node.
RAM_BACKEND = "wqkit-ram"

_FLAT_RANGE = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, (?:ram|rom)\): (\S+)", re.M)


def backend_options(backend_id: str, mib: int) -> list[str]:
    """QEMU's ``-object`` for one RAM backend of ``mib`` MiB the host can map (memfd, shared)."""
    return ["-object", f"memory-backend-memfd,id={backend_id},size={mib}M,share=on"]


def machine_ram_options(mib: int) -> list[str]:
    """The RAM of a guest without NUMA nodes: one mappable backend as the machine's memory."""
    return [*backend_options(RAM_BACKEND, mib), "-machine", f"memory-backend={RAM_BACKEND}"]


@dataclass(frozen=True)
class Segment:
    """One guest-physical range and where the host sees it."""

    gpa: int
    size: int
    region: str
    view: memoryview


def flat_ram_ranges(mtree: str) -> list[tuple[int, int, str]]:
    """``(start, size, region)`` of the RAM and ROM ranges of the flat view holding the guest's
    ``memory`` address space, in QEMU's ``info mtree -f`` output."""
    for view in re.split(r"^FlatView #", mtree, flags=re.M):
        if re.search(r'^\s*AS "memory"', view, re.M):
            return [(int(m[1], 16), int(m[2], 16) - int(m[1], 16) + 1, m[3]) for m in _FLAT_RANGE.finditer(view)]
    raise LabError("QEMU's `info mtree -f` shows no flat view of the memory address space")


def _mappings(pid: int) -> list[tuple[int, int, int, int, bool]]:
    """``(start, end, file offset, inode, shared)`` of QEMU's file-backed mappings."""
    rows = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        inode = int(fields[4])
        if inode:
            rows.append((start, end, int(fields[2], 16), inode, fields[1].endswith("s")))
    return rows


def _open_by_inode(pid: int, inode: int) -> int:
    """A read-only descriptor of the QEMU process's open file with this inode (its memfd)."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{fd}"
        try:
            if os.stat(path).st_ino == inode:
                return os.open(path, os.O_RDONLY)
        except OSError:
            continue
    raise LabError(f"QEMU (pid {pid}) holds no open file with inode {inode} (its RAM backend)")


class GuestRam:
    """The guest's RAM ranges, mapped from QEMU's memfd backends; :meth:`read` one range.

    ``hmp`` runs one human-monitor command of that QEMU and returns its output.
    """

    def __init__(self, pid: int, hmp: Callable[[str], str]) -> None:
        self.pid = pid
        self._maps: dict[int, mmap.mmap] = {}
        self.segments: list[Segment] = []
        #: Regions of the flat view that are not in a shared mapping (QEMU's BIOS ROM): not readable here.
        self.unmapped: list[str] = []
        try:
            self._map(hmp)
        except BaseException:
            self.close()
            raise

    def _map(self, hmp: Callable[[str], str]) -> None:
        mappings = _mappings(self.pid)
        for gpa, size, region in flat_ram_ranges(hmp("info mtree -f")):
            answer = hmp(f"gpa2hva {gpa:#x}")
            found = re.search(r"is (0x[0-9a-f]+)", answer)
            if not found:
                raise LabError(f"QEMU's gpa2hva {gpa:#x} ({region}): {answer.strip()}")
            hva = int(found[1], 16)
            mapping = next((m for m in mappings if m[0] <= hva and hva + size <= m[1]), None)
            if mapping is None or not mapping[4]:
                self.unmapped.append(region)     # firmware ROMs: QEMU's private copies, not the kernel's RAM
                continue
            start, _end, file_offset, inode, _shared = mapping
            ram = self._maps.get(inode)
            if ram is None:
                fd = _open_by_inode(self.pid, inode)
                try:
                    ram = self._maps[inode] = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
                finally:
                    os.close(fd)
            offset = file_offset + hva - start
            self.segments.append(Segment(gpa, size, region, memoryview(ram)[offset:offset + size]))
        if not self.segments:
            raise LabError(f"none of the guest's RAM is in a shared file mapping of QEMU (pid {self.pid}): start "
                           "it with memory-backend-memfd,share=on backends (wqkit.lab.guest_ram)")

    @property
    def size(self) -> int:
        """Bytes of guest RAM and ROM mapped."""
        return sum(s.size for s in self.segments)

    def read(self, gpa: int, size: int) -> memoryview:
        """``size`` bytes at guest-physical ``gpa``, without a copy (the range must lie in one segment)."""
        for seg in self.segments:
            if seg.gpa <= gpa and gpa + size <= seg.gpa + seg.size:
                return seg.view[gpa - seg.gpa:gpa - seg.gpa + size]
        raise LabError(f"guest-physical {gpa:#x}+{size:#x} is not in one mapped RAM range")

    def close(self) -> None:
        """Drop the views and unmap (a view still held elsewhere keeps its mapping alive)."""
        views, self.segments = self.segments, []
        for seg in views:
            seg.view.release()
        for ram in self._maps.values():
            try:
                ram.close()
            except BufferError:      # a caller still holds a view; the mapping goes with it
                pass
        self._maps.clear()
