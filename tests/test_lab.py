"""The lab VM, on one shared boot: kernel, accelerator, sessions, timeouts."""

import hashlib
import os
import shlex
import shutil
import threading
import time

import pytest

from wqkit.errors import LabError, LabTimeout
from wqkit.lab import LabKernel
from wqkit.lab.guest_init import guest_init
from wqkit.paths import cache_dir

pytestmark = pytest.mark.lab


def test_guest_runs_the_lab_kernel(lab):
    assert lab.run("uname -r", check=True).stdout.strip() == LabKernel.stock().release
    assert lab.guest_release == LabKernel.stock().release


def test_recorded_accelerator_is_the_one_that_ran(lab):
    assert lab.accel in ("kvm", "tcg")
    kvm_seen = "Hypervisor detected: KVM" in lab.run("dmesg", check=True).stdout
    assert kvm_seen == (lab.accel == "kvm")


def test_one_boot_serves_several_commands(lab):
    boot_ids = {lab.run("cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip() for _ in range(3)}
    assert boot_ids == {lab.boot_id}
    uptimes = [float(lab.run("cut -d' ' -f1 /proc/uptime", check=True).stdout) for _ in range(2)]
    assert uptimes[1] > uptimes[0]


def test_command_output_and_status_come_back(lab):
    result = lab.run("echo out; echo err >&2; exit 7")
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_hanging_command_is_killed_at_its_timeout(lab):
    with pytest.raises(LabTimeout, match="sleep 4242"):
        lab.run("sleep 4242", timeout=3)
    # The command's whole process group is gone, and the session still works.
    assert lab.run("pgrep -x sleep").returncode == 1
    assert lab.run("cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip() == lab.boot_id


def test_shared_dir_is_writable_from_the_guest(lab):
    lab.run(f"echo from-guest > {lab.shared_dir}/probe.txt", check=True)
    assert (lab.shared_dir / "probe.txt").read_text() == "from-guest\n"


def test_ask_reaches_a_guest_socket_server_and_waits_for_it(lab):
    # The server binds only after a delay: ask() waits for it, then relays one line each way.
    server = ("import socket, time; time.sleep(1); s = socket.socket(socket.AF_UNIX); "
              "s.bind('/run/wqkit-test.sock'); s.listen(1); c, _ = s.accept(); f = c.makefile('rw'); "
              "f.write(f.readline().strip()[::-1] + '\\n'); f.flush()")
    lab.run(f"rm -f /run/wqkit-test.sock; setsid python3 -c \"{server}\" >/dev/null 2>&1 </dev/null &", check=True)
    assert lab.ask("/run/wqkit-test.sock", "hello", timeout=60) == "olleh\n"
    with pytest.raises(LabTimeout, match="no server on /run/wqkit-none.sock"):
        lab.ask("/run/wqkit-none.sock", "hello", timeout=1)
    # A server that died before binding fails the request at once, not at its timeout.
    lab.run("sh -c 'exit 3' & echo $! > /run/wqkit-dead.pid; wait", check=True)
    start = time.monotonic()
    with pytest.raises(LabError, match=r"the server of /run/wqkit-none.sock \(pid \d+\) has exited"):
        lab.ask("/run/wqkit-none.sock", "hello", timeout=300, pid_file="/run/wqkit-dead.pid")
    assert time.monotonic() - start < 60
    assert lab.run("true").returncode == 0   # the session is still usable


def test_the_guest_sees_the_provisioned_modules_and_kbuild_tree(lab):
    # virtme-ng links the cache's modules at /lib/modules/RELEASE; BCC and bpftrace look for
    # the headers through its build and source links, which lead into the cache.
    release = lab.guest_release
    kernel = LabKernel.stock()
    out = lab.run(f"readlink -f /lib/modules/{release}/build; test -f /lib/modules/{release}/build/Makefile && "
                  f"test -f /lib/modules/{release}/source/include/linux/kconfig.h && echo headers; "
                  f"modprobe -n -v 9p >/dev/null && echo modprobe", check=True).stdout.split()
    assert out == [str(kernel.build_dir.resolve()), "headers", "modprobe"]


def test_concurrent_callers_each_get_their_own_answer(lab):
    # A dashboard thread and a notebook cell share one session: answers must never cross.
    results: dict[str, list[str]] = {"a": [], "b": []}

    def caller(tag: str) -> None:
        for i in range(8):
            results[tag].append(lab.run(f"echo {tag}{i}", check=True).stdout.strip())

    threads = [threading.Thread(target=caller, args=(tag,)) for tag in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert results == {tag: [f"{tag}{i}" for i in range(8)] for tag in results}


def test_values_put_into_guest_commands_are_quoted(lab, tmp_path):
    from wqkit.target import LabTarget
    odd = "it's a $(reboot) file; name"
    lab.run(f"printf x > {shlex.quote(str(lab.shared_dir / odd))}", check=True)
    copied = LabTarget(session=lab).copy_back(str(lab.shared_dir / odd), tmp_path / "copy")
    assert copied.read_text() == "x" and lab.run("true").returncode == 0


def test_the_guest_boots_without_udev_and_still_names_its_ports(lab):
    # PID 1 is wqkit's guest init, not virtme-ng-init: no udevd ever ran (it makes /run/udev),
    # yet the ports have udev's names and the console has the init's timeline.
    out = lab.run("tr '\\0' ' ' < /proc/1/cmdline; echo; pgrep udevd || echo no-udevd; "
                  "test -e /run/udev || echo no-run-udev; readlink /dev/virtio-ports/virtme.stdin", check=True)
    init, udevd, run_udev, stdin_port = out.stdout.splitlines()
    assert init.split()[-1] == str(guest_init())     # the static init, not a Python script
    assert lab.boot_path == "pvh+qboot"              # QEMU entered the vmlinux directly
    assert (udevd, run_udev) == ("no-udevd", "no-run-udev")
    assert stdin_port.startswith("/dev/vport")
    console = lab.console()
    assert console.index("wqkit-init: script started") < console.index("wqkit-init: set-up done")


def test_the_root_is_mounted_cached_yet_a_file_the_host_rewrites_reads_new(lab):
    # 9p's cache=mmap on the root (wqkit.lab.root_mount): readahead and a page cache, yet every open
    # asks the host, and wqkit's own directories under an overlay (a user's cache is in /home) are
    # 9p mounts of their own. The hardest case: a file in the cache's modules rewritten in place,
    # same size, same times (QEMU's qid version is mtime in seconds and the size), read by read()
    # and by mmap, after the guest has read it once.
    options = lab.run("awk '$3 == \"9p\" && $2 == \"/\" {print $4}' /proc/mounts", check=True).stdout.split()
    assert len(options) == 1 and {"cache=0x5", "cache=mmap"} & set(options[0].split(",")), options
    probe = cache_dir() / "modules" / "probe-root-mount" / "file"
    probe.parent.mkdir(parents=True, exist_ok=True)
    read_both = (f"cat {shlex.quote(str(probe))} | md5sum; python3 -c 'import mmap, hashlib, sys; "
                 f"f = open(sys.argv[1], \"rb\"); print(hashlib.md5(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)).hexdigest())' "
                 f"{shlex.quote(str(probe))}")
    try:
        for fill in (b"A", b"B"):
            first = probe.stat() if probe.exists() else None
            with open(probe, "r+b" if first else "wb") as f:
                f.write(fill * (1 << 20))
            if first:       # same inode, same size, and the first write's times: the same qid version
                os.utime(probe, ns=(first.st_atime_ns, first.st_mtime_ns))
            digest = hashlib.md5(fill * (1 << 20)).hexdigest()
            seen = lab.run(read_both, check=True).stdout.split()
            assert seen == [digest, "-", digest], fill
    finally:
        shutil.rmtree(probe.parent, ignore_errors=True)
