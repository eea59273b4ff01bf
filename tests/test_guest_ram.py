"""Mapping a QEMU process's RAM backends (wqkit.lab.guest_ram), against a real process
holding a shared memfd, and the VMCOREINFO note parser. The lab's own mapping is tested
in test_inspect_lab.py."""

import os
import struct
import subprocess
import sys

import pytest

from wqkit.errors import LabError, WqkitError
from wqkit.inspect.source import vmcoreinfo_note
from wqkit.lab.guest_ram import GuestRam, flat_ram_ranges

#: QEMU 7.2's `info mtree -f` of a q35 lab guest with 2 GiB (recorded; device lines cut).
MTREE = """FlatView #0
 AS "mch", root: bus master container
 Root memory region: (none)
  No rendered FlatView

FlatView #1
 AS "memory", root: system
 AS "cpu-memory-0", root: system
 Root memory region: system
  0000000000000000-00000000000c2fff (prio 0, ram): wqkit-ram
  00000000000c3000-00000000000e7fff (prio 0, rom): wqkit-ram @00000000000c3000
  00000000000e8000-00000000000effff (prio 0, ram): wqkit-ram @00000000000e8000
  00000000000f0000-00000000000fffff (prio 0, rom): wqkit-ram @00000000000f0000
  0000000000100000-000000007fffffff (prio 0, ram): wqkit-ram @0000000000100000
  00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio
  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios

FlatView #2
 AS "I/O", root: io
 Root memory region: io
  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan
"""


def test_the_flat_view_of_the_memory_address_space_gives_the_ram_ranges():
    ranges = flat_ram_ranges(MTREE)
    assert ranges[0] == (0, 0xc3000, "wqkit-ram")
    assert ranges[4] == (0x100000, 0x7ff00000, "wqkit-ram")
    assert ranges[-1] == (0xfffc0000, 0x40000, "pc.bios")
    assert len(ranges) == 6          # I/O ranges and the other address spaces are not RAM
    with pytest.raises(LabError, match="no flat view"):
        flat_ram_ranges(MTREE.replace('AS "memory"', 'AS "other"'))


#: A stand-in for QEMU: a shared memfd of 64 KiB mapped at some address, filled with a pattern,
#: and an anonymous region (as QEMU's private BIOS copy is); prints both addresses.
HOLDER = r"""
import mmap, os, sys, ctypes
fd = os.memfd_create("memory-backend-memfd")
os.ftruncate(fd, 65536)
ram = mmap.mmap(fd, 65536, mmap.MAP_SHARED)
for i in range(0, 65536, 8):
    ram[i:i + 8] = i.to_bytes(8, "little")
rom = mmap.mmap(-1, 4096, mmap.MAP_PRIVATE)
address = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
print(address(ram), address(rom), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder():
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ram, rom = (int(x) for x in proc.stdout.readline().split())
    yield proc.pid, ram, rom
    proc.stdin.close()
    proc.wait(timeout=10)


def test_a_shared_memfd_is_mapped_where_qemu_says_and_reads_what_the_process_wrote(holder):
    pid, ram_hva, rom_hva = holder
    # Guest RAM at 1 MiB is the memfd from its 4 KiB on; the BIOS is QEMU's private copy.
    mtree = ("FlatView #0\n AS \"memory\", root: system\n"
             "  0000000000100000-000000000010efff (prio 0, ram): wqkit-ram @0000000000001000\n"
             "  00000000fffff000-00000000ffffffff (prio 0, rom): pc.bios\n")
    hva = {0x100000: ram_hva + 0x1000, 0xfffff000: rom_hva}

    def hmp(command: str) -> str:
        if command == "info mtree -f":
            return mtree
        gpa = int(command.split()[1], 16)
        return f"Host virtual address for {gpa:#x} (wqkit-ram) is {hva[gpa]:#x}\n"

    ram = GuestRam(pid, hmp)
    inode = next(line.split()[4] for line in open(f"/proc/{pid}/maps") if "memory-backend-memfd" in line)
    try:
        assert [(s.gpa, s.size) for s in ram.segments] == [(0x100000, 0xf000)]
        assert ram.unmapped == ["pc.bios"]
        # Guest-physical 0x100000 + x is memfd offset 0x1000 + x, which holds its own offset.
        for x in (0, 8, 0x2340, 0xeff8):
            assert int.from_bytes(ram.read(0x100000 + x, 8), "little") == 0x1000 + x
        with pytest.raises(LabError, match="not in one mapped RAM range"):
            ram.read(0x10eff8, 16)
        view = ram.segments[0].view
    finally:
        ram.close()
    assert ram.segments == []
    with pytest.raises(ValueError):
        bytes(view)      # released with the mapping: no stale reads after close
    # Unmapped (a lab session of this process may hold a mapping of its own guest's RAM).
    assert not [line for line in open(f"/proc/{os.getpid()}/maps") if line.split()[4:5] == [inode]]


def test_a_process_without_a_shared_ram_mapping_is_refused(holder):
    pid, _, rom_hva = holder
    mtree = "FlatView #0\n AS \"memory\", root: system\n  0000000000000000-0000000000000fff (prio 0, ram): pc.ram\n"
    with pytest.raises(LabError, match="none of the guest's RAM is in a shared file mapping"):
        GuestRam(pid, lambda c: mtree if c.startswith("info") else f"is {rom_hva:#x}")


def test_vmcoreinfo_note_text():
    text = b"OSRELEASE=6.12.95+deb12-amd64\nPAGESIZE=4096\n"
    note = struct.pack("<III", 11, len(text), 0) + b"VMCOREINFO\0\0" + text + b"\0" * 64
    assert vmcoreinfo_note(note) == text
    with pytest.raises(WqkitError, match="no VMCOREINFO note"):
        vmcoreinfo_note(struct.pack("<III", 5, 4, 0) + b"CORE\0\0\0\0" + b"\0" * 16)
