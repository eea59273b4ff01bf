"""The lab's QEMU command: virtme-ng's, with wqkit's guest init (no VM is started), and the
init itself, built and run as an ordinary process where it can do no harm."""

import os
import re
import subprocess
from pathlib import Path

from wqkit.lab.guest_init import GUEST_MODULES, PRIVATE_DIRS, guest_init
from wqkit.lab.agent_bundle import guest_command
from wqkit.lab.vm import LabSession


def test_the_qemu_command_boots_wqkit_init_with_virtme_ngs_initramfs_and_ports():
    session = LabSession(accel="tcg")
    try:
        qemu = session._qemu_command("tcg", guest_command())
    finally:
        session.close()
    assert "qemu-system" in qemu[0]
    cmdline = qemu[qemu.index("-append") + 1]
    assert re.findall(r"(?:^|\s)init=(\S+)", cmdline) == [str(guest_init())]
    # What the init needs from wqkit comes just before it, as its environment.
    assert f"wqkit_private_dirs={':'.join(PRIVATE_DIRS)} wqkit_modules={':'.join(GUEST_MODULES)} init=" in cmdline
    assert "virtme.exec=`" in cmdline and "virtme_link_mods=" in cmdline
    assert (session.workdir / "initramfs.img").stat().st_size > 0
    assert qemu[qemu.index("-initrd") + 1] == str(session.workdir / "initramfs.img")
    ports = {arg.split("name=")[1].split(",")[0] for arg in qemu if arg.startswith("virtserialport,")}
    assert {"virtme.stdin", "virtme.stdout", "virtme.stderr", "virtme.ret"} <= ports
    assert str(session.qmp_socket) in " ".join(qemu) and "vmcoreinfo" in qemu


def test_the_init_is_a_static_binary_built_once_per_source(tmp_path, monkeypatch):
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    binary = guest_init()
    assert binary.is_file() and os.access(binary, os.X_OK) and tmp_path in binary.parents
    # Static: it runs before the guest has mounted anything but the 9p root.
    assert b"ld-linux" not in binary.read_bytes()[:4096] and "static" in subprocess.run(
        ["file", str(binary)], capture_output=True, text=True).stdout
    mtime = binary.stat().st_mtime_ns
    assert guest_init() == binary and binary.stat().st_mtime_ns == mtime


def test_the_init_outside_a_guest_logs_why_and_never_reaches_the_script(tmp_path, monkeypatch):
    # As an ordinary user (CI runs tests as one) every mount and the power-off are refused: it
    # logs each refusal on stderr (no /dev/kmsg write access), finds no virtme.exec=, says so.
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    if os.geteuid() == 0:
        import pytest

        pytest.skip("as root the init would mount over this machine's /proc and power it off")
    proc = subprocess.run([str(guest_init())], capture_output=True, text=True, timeout=30,
                          env={"virtme_rw_overlay0": "/nonexistent-wqkit", "wqkit_private_dirs": "/nonexistent-a"})
    log = proc.stderr
    assert "wqkit-init: kernel file systems mounted" in log
    assert "wqkit-init: mount overlay on /nonexistent-wqkit" in log
    assert "wqkit-init: mount tmpfs on /nonexistent-a" in log
    assert "wqkit-init: failed: no virtme.exec= on the kernel command line" in log


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


def test_builders_racing_for_the_init_each_end_with_the_same_whole_binary(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    with ThreadPoolExecutor(4) as pool:
        built = set(pool.map(lambda _: guest_init(), range(4)))
    (binary,) = built
    assert os.access(binary, os.X_OK) and not list(binary.parent.glob("*.partial"))
