"""The lab's QEMU command: virtme-ng's, with wqkit's guest init (no VM is started)."""

import re
from pathlib import Path

from wqkit.lab.guest_init import SCRIPT_PORTS, numbered
from wqkit.lab.vm import AGENT, GUEST_INIT, GUEST_PYTHON, LabSession


def test_the_qemu_command_boots_wqkit_init_with_virtme_ngs_initramfs_and_ports():
    session = LabSession(accel="tcg")
    try:
        qemu = session._qemu_command("tcg", [GUEST_PYTHON, "-IS", str(AGENT)])
    finally:
        session.close()
    assert "qemu-system" in qemu[0]
    cmdline = qemu[qemu.index("-append") + 1]
    assert re.findall(r"(?:^|\s)init=(\S+)", cmdline) == [str(GUEST_INIT)]
    assert "virtme.exec=`" in cmdline and "virtme_link_mods=" in cmdline
    assert (session.workdir / "initramfs.img").stat().st_size > 0
    assert qemu[qemu.index("-initrd") + 1] == str(session.workdir / "initramfs.img")
    ports = {arg.split("name=")[1].split(",")[0] for arg in qemu if arg.startswith("virtserialport,")}
    assert {name for name, _ in SCRIPT_PORTS} <= ports
    assert str(session.qmp_socket) in " ".join(qemu) and "vmcoreinfo" in qemu


def test_only_numbered_virtme_variables_are_mounts():
    assert numbered("virtme_initmount0", "virtme_initmount") and numbered("virtme_rw_overlay12", "virtme_rw_overlay")
    assert not numbered("virtme_initmount0_fstype", "virtme_initmount")
    assert not numbered("virtme_initmount", "virtme_initmount")


def test_preparing_a_boot_leaves_nothing_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))     # where virtme-run makes its exit-code file
    session = LabSession(accel="tcg")
    try:
        qemu = session._qemu_command("tcg", ["true"])
    finally:
        session.close()
    assert list(tmp_path.iterdir()) == []
    (ret,) = [arg.split("path=")[1] for arg in qemu if arg.startswith("file,id=ret,")]
    assert Path(ret).parent == session.workdir
