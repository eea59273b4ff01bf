"""How QEMU enters the lab's kernel (wqkit.lab.firmware), on small ELF files made here."""

import struct

from wqkit.lab import firmware
from wqkit.lab.firmware import direct_boot, has_pvh_entry


def elf_with_notes(path, notes: list[tuple[bytes, int]]):
    """A 64-bit ELF whose one PT_NOTE segment holds ``notes`` (name, type), each with 8 bytes of desc."""
    body = b""
    for name, kind in notes:
        padded = name + b"\0" * (4 - len(name) % 4)
        body += struct.pack("<III", len(name) + 1, 8, kind) + padded + bytes(8)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56,
                                                                     1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 4, 64 + 56, 0, 0, len(body), len(body), 4)
    path.write_bytes(header + phdr + body)
    return path


def test_a_pvh_note_among_others_is_found(tmp_path):
    assert has_pvh_entry(elf_with_notes(tmp_path / "pvh", [(b"GNU", 3), (b"Xen", 18)]), 1)
    assert not has_pvh_entry(elf_with_notes(tmp_path / "plain", [(b"GNU", 3), (b"Xen", 17)]), 1)
    assert not has_pvh_entry(tmp_path / "missing", 1)
    (tmp_path / "bzimage").write_bytes(b"MZ" + bytes(100))
    assert not has_pvh_entry(tmp_path / "bzimage", 1)


def test_a_pvh_kernel_is_booted_directly_with_qboot_else_as_virtme_ng_does(tmp_path, monkeypatch):
    qemu = ["qemu-system-x86_64", "-name", "wqkit-lab", "-kernel", "/boot/vmlinuz", "-append", "x"]
    qboot = tmp_path / "qboot.rom"
    qboot.write_bytes(b"rom")
    monkeypatch.setattr(firmware, "QBOOT", qboot)
    pvh = elf_with_notes(tmp_path / "vmlinux", [(b"Xen", 18)])
    changed, how = direct_boot(qemu, pvh)
    assert how == "pvh+qboot" and changed[:3] == ["qemu-system-x86_64", "-bios", str(qboot)]
    assert changed[changed.index("-kernel") + 1] == str(pvh)
    assert direct_boot(qemu, elf_with_notes(tmp_path / "old", [(b"GNU", 3)])) == (qemu, "bzimage")
    monkeypatch.setattr(firmware, "QBOOT", tmp_path / "no-qboot.rom")
    assert direct_boot(qemu, pvh) == (qemu, "bzimage")
