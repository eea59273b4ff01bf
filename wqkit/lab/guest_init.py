#!/usr/bin/python3 -IS
"""The lab guest's init (PID 1): what virtme-ng-init does for wqkit, without udev.

virtme-ng's initramfs mounts the host's root over 9p and executes the first
``init=`` on the kernel command line, which the lab sets to this file, ahead of
virtme-ng's own. virtme-ng-init starts udevd whenever the guest has one and
waits for its coldplug to settle: 60 % of a TCG boot (9 s of 15), only to name
the script's I/O ports under ``/dev/virtio-ports``. This init reads the ports'
names from sysfs instead, then does the rest of virtme-ng-init's set-up that a
lab session uses, with system calls, not commands (each fork costs under TCG):
kernel file systems, the writable overlays on the read-only root, the host
directories virtme-ng exports (``virtme_initmountN``), the modules of the
kernel booted (and the few that udev would have loaded and the lab needs), and
the script (``virtme.exec``) on the ports. It reaps orphans while the script
runs, and powers the guest off when it ends.

It reads only what virtme-ng 1.42 puts on the command line and in the
environment (``virtme_*`` variables), as virtme-run writes them for the lab.
Each step is logged to the kernel log (``wqkit-init:``), so the console's
timestamps give the boot's timeline. Standard library only, and few imports
(each reads its files over 9p): it runs under the guest's /usr/bin/python3,
isolated and without site (no scan of dist-packages), before anything else.
"""

import binascii
import ctypes
import os
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
RB_POWER_OFF = 0x4321FEDC
#: (source, target, type, flags, data), in order: what a lab guest mounts itself.
KERNEL_MOUNTS = (
    ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
    ("sys", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
    ("run", "/run", "tmpfs", 0, "mode=0755"),
    ("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, ""),
    ("debugfs", "/sys/kernel/debug", "debugfs", 0, ""),
    ("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, ""),
    ("bpf", "/sys/fs/bpf", "bpf", 0, ""),
    ("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, ""),
    ("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, ""),
)
#: Host directories the guest must not write through to (tmpfs in the guest).
PRIVATE_DIRS = ("/var/log", "/var/tmp", "/var/cache", "/var/lib/apt")
#: virtme-ng's 9p options for the directories it exports.
NINEP_OPTIONS = "version=9p2000.L,trans=virtio,access=any,msize=524288"
DEFAULT_PATH = "/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin"
#: Modules udev would have loaded that the lab uses: qemu_fw_cfg hands the kernel's
#: vmcoreinfo to QEMU, which drgn on the host reads through QMP (the agent also reports
#: /sys/kernel/vmcoreinfo, for the readers of the mapped guest RAM).
GUEST_MODULES = ("qemu_fw_cfg",)
#: Script I/O ports: (virtio port name, file descriptor in the script).
SCRIPT_PORTS = (("virtme.stdin", 0), ("virtme.stdout", 1), ("virtme.stderr", 2))


def log(message: str) -> None:
    """One line in the kernel log, timestamped by the kernel."""
    try:
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(f"<6>wqkit-init: {message}\n")
    except OSError:
        print(f"wqkit-init: {message}", file=sys.stderr)


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> bool:
    """mount(2) on a directory made if missing; a failure is logged, not fatal."""
    try:
        os.makedirs(target, exist_ok=True)
    except OSError:
        pass
    if LIBC.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()) == 0:
        return True
    log(f"mount {fstype} on {target}: {os.strerror(ctypes.get_errno())}")
    return False


def numbered(key: str, prefix: str) -> bool:
    """Whether ``key`` is ``prefix`` followed by digits only (virtme_initmount0, not ..._fstype)."""
    return key.startswith(prefix) and key[len(prefix):].isdigit()


def mount_overlays(env: dict) -> None:
    """virtme_rw_overlayN=DIR: a writable tmpfs layer over a read-only host directory."""
    for key, lower in sorted(env.items()):
        if numbered(key, "virtme_rw_overlay"):
            layer = f"/run/tmp/{key}"
            os.makedirs(f"{layer}/upper")
            os.makedirs(f"{layer}/work")
            mount(key, lower, "overlay", 0, f"xino=off,lowerdir={lower},upperdir={layer}/upper,workdir={layer}/work")


def mount_host_dirs(env: dict) -> None:
    """virtme_initmountN=PATH: the host directory exported with tag virtme.initmountN."""
    for key, path in sorted(env.items()):
        if numbered(key, "virtme_initmount"):
            mount(key.replace("_", "."), "/" + path.lstrip("/"), env.get(f"{key}_fstype", "9p"), 0, NINEP_OPTIONS)


def link_modules(env: dict) -> None:
    """The booted kernel's modules at /lib/modules/RELEASE (virtme_link_mods=DIR)."""
    target = env.get("virtme_link_mods")
    if target and "virtme_root_mods" not in env:
        mount("none", "/lib/modules", "tmpfs")
        os.symlink(target, f"/lib/modules/{os.uname().release}")


def start_modprobe() -> int:
    """Start modprobe of GUEST_MODULES (once /lib/modules is linked); its pid."""
    return os.posix_spawn("/sbin/modprobe", ["modprobe", "-a", *GUEST_MODULES], {"PATH": DEFAULT_PATH})


def wait_modprobe(pid: int) -> None:
    """Wait for modprobe (before the script: the host may read vmcoreinfo at once); a failure is logged."""
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    log(f"modprobe {' '.join(GUEST_MODULES)}: " + ("done" if code == 0 else f"exited with {code}"))


def link_dev() -> None:
    """/dev/fd and friends, and /dev/virtio-ports/NAME as udev would name the ports."""
    for source, link in (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                         ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")):
        if not os.path.lexists(link):
            os.symlink(source, link)
    os.makedirs("/dev/virtio-ports", exist_ok=True)
    for name, device in virtio_ports().items():
        os.symlink(device, f"/dev/virtio-ports/{name}")


def virtio_ports() -> dict:
    """Port name → device node, read from sysfs (/sys/class/virtio-ports/vportNpM/name)."""
    ports = {}
    root = "/sys/class/virtio-ports"
    for vport in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        try:
            with open(f"{root}/{vport}/name") as f:
                name = f.read().strip()
        except OSError:
            continue
        if name:
            ports[name] = f"/dev/{vport}"
    return ports


def script_from_cmdline() -> str:
    """The command virtme-ng passed as virtme.exec=`BASE64`."""
    with open("/proc/cmdline") as f:
        _, found, rest = f.read().partition("virtme.exec=`")
    if not found:
        raise RuntimeError("no virtme.exec= on the kernel command line")
    return binascii.a2b_base64(rest.partition("`")[0]).decode()


def start_script(script: str, env: dict) -> int:
    """Fork the script with its stdin/stdout/stderr on the virtio ports; its pid."""
    ports = virtio_ports()
    missing = [name for name, _ in SCRIPT_PORTS if name not in ports]
    if missing:
        raise RuntimeError(f"no virtio port named {', '.join(missing)}")
    fds = [(os.open(ports[name], os.O_RDWR), fd) for name, fd in SCRIPT_PORTS]
    script_env = {k: v for k, v in env.items() if not k.startswith("virtme_") and k != "nr_open"}
    script_env["PATH"] = DEFAULT_PATH
    script_env.setdefault("HOME", "/root")
    pid = os.fork()
    if pid == 0:
        os.setsid()
        for port_fd, fd in fds:
            os.dup2(port_fd, fd)
        os.chdir("/")
        os.execve("/bin/sh", ["/bin/sh", "-c", script], script_env)
    for port_fd, _ in fds:
        os.close(port_fd)
    return pid


def wait_for(pid: int) -> int:
    """Reap every child (orphans are ours) until ``pid`` exits; its exit code."""
    while True:
        try:
            child, status = os.wait()
        except ChildProcessError:
            return -1
        if child == pid:
            return os.waitstatus_to_exitcode(status)


def report_exit(code: int) -> None:
    """The script's exit code on the virtme.ret port (virtme-run's return code)."""
    device = virtio_ports().get("virtme.ret")
    if device:
        with open(device, "w") as ret:
            ret.write(str(code))


def power_off() -> None:
    os.sync()
    LIBC.reboot(RB_POWER_OFF)


def main() -> None:
    env = dict(os.environ)
    for source, target, fstype, flags, data in KERNEL_MOUNTS:
        # Without an initramfs (wqkit's built kernels) the kernel has mounted /dev already.
        if not os.path.ismount(target):
            mount(source, target, fstype, flags, data)
    log("kernel file systems mounted")
    try:
        if "nr_open" in env:
            with open("/proc/sys/fs/nr_open", "w") as f:
                f.write(env["nr_open"])
        with open("/proc/sys/kernel/hostname", "w") as f:
            f.write(env.get("virtme_hostname", "virtme-ng"))
        mount_overlays(env)
        for path in PRIVATE_DIRS:
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV)
        link_modules(env)
        modprobe = start_modprobe()     # loads while the rest is set up
        mount_host_dirs(env)
        link_dev()
        wait_modprobe(modprobe)
        log("set-up done; starting script")
        code = wait_for(start_script(script_from_cmdline(), env))
        log(f"script exited with code {code}")
        report_exit(code)
    except Exception as exc:  # PID 1 must not exit: say why, then power off
        log(f"failed: {type(exc).__name__}: {exc}")
    power_off()


if __name__ == "__main__":
    main()
