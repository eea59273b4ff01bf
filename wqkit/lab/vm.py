"""The lab VM: boot a lab kernel with virtme-ng and run commands in it.

A :class:`LabSession` boots once and then runs any number of commands in the
same guest (one boot, many notebook cells). The guest runs
``wqkit/lab/agent.py`` over virtme-ng's script stdin/stdout; the kernel
console goes to ``console.log`` in the session directory. QEMU runs in its own
process group, which :meth:`LabSession.close` always kills, so no VM outlives
its session, whether it ends normally, by an exception or by Ctrl-C.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Sequence

from wqkit.command import CommandResult
from wqkit.console import progress_line
from wqkit.errors import LabCrash, LabError, LabTimeout, WqkitError
from wqkit.lab.accel import PROBE_TIMEOUT, choose_accel
from wqkit.lab.agent_bundle import guest_command
from wqkit.lab.firmware import direct_boot
from wqkit.lab.guest_init import PRIVATE_DIRS, guest_init, init_options
from wqkit.lab.kernel import LabKernel
from wqkit.lab.guest_ram import GuestRam, machine_ram_options
from wqkit.lab.qmp import QmpClient
from wqkit.lab.root_mount import cache_root_in_command_line, cache_root_in_initramfs
from wqkit.lab.splats import first_splat_line
from wqkit.lab.topology import MAX_CPUS, Topology, memory_mib
from wqkit.paths import SOURCE_DIR, cache_dir

AGENT_PREFIX = "@wqkit "
#: Host paths the guest does not see as the host does: tmpfs in the guest, or a
#: writable overlay whose writes stay in the guest (virtme-ng's /tmp).
GUEST_MASKED = ("/tmp", "/run", *PRIVATE_DIRS)
#: Seconds the host waits beyond a command's timeout before it declares the guest hung.
HANG_GRACE = 30.0
#: The parts of wqkit's cache the guest reads: provisioned kernels and built modules.
GUEST_CACHE_DIRS = ("kernels", "modules")
#: Host directories the guest writes to a tmpfs layer over (vng's defaults): the
#: root is shared read-only, and tools in the guest write under /etc, /var, /tmp...
GUEST_OVERLAYS = ("/etc", "/lib", "/home", "/opt", "/srv", "/usr", "/var", "/tmp")
KEEP_SESSIONS = 20
#: A kernel variant's options. debug: KASAN prints every report, not only the first of the boot
#: (a test that injects a bug must not hide a real one after it); the watchdogs allow for TCG
#: running an instrumented kernel tens of times slower than hardware.
VARIANT_KOPTS = {"debug": ("kasan_multi_shot", "watchdog_thresh=60", "hung_task_timeout_secs=600",
                           "workqueue.watchdog_thresh=120")}
#: Session directories of this process whose VM may still run: never pruned.
_LIVE_SESSIONS: set[Path] = set()
#: A session directory's record of its QEMU process group (for reap_orphans).
PGID_FILE = "qemu.pgid"
#: The host a session's VM runs on: a cache shared between hosts holds others' live sessions.
HOST_FILE = "host"
MAX_BOOT_RETRIES = 2
TCG_THREADS = ("multi", "single")
#: A lab's CPUs and memory unless told otherwise, and the CPUs it may have: the one place
#: the CLI, studies and sessions read them from.
DEFAULT_CPUS = 2
DEFAULT_MEMORY = "2G"
CPUS_RANGE = (1, MAX_CPUS)


def check_cpus(cpus: object) -> int:
    """``cpus`` as a number of lab CPUs, or a one-line error."""
    low, high = CPUS_RANGE
    if isinstance(cpus, bool) or not isinstance(cpus, int) or not low <= cpus <= high:
        raise WqkitError(f"cpus={cpus!r} is not a number of lab CPUs ({low}..{high})")
    return cpus

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    """Default progress sink: one line on the terminal (see wqkit.console)."""
    progress_line(message, prefix="lab")


def _under(path: Path, dirs: Sequence[str]) -> bool:
    resolved = str(path.resolve())
    return any(resolved == d or resolved.startswith(d + "/") for d in dirs)


def guest_visible(path: Path) -> bool:
    """Whether the guest sees a host path through the shared root file system."""
    return not _under(path, GUEST_MASKED)


def read_fresh(path: Path) -> bool:
    """Whether the guest reads what the host last wrote at ``path`` through the shared root: not
    under an overlay (GUEST_OVERLAYS). overlayfs keeps the root's dentry of a file, and with it
    the 9p page cache (wqkit.lab.root_mount), as long as it keeps its own, never asking the host
    again: a file the host rewrote there could be read as it was."""
    return not _under(path, (*GUEST_MASKED, *GUEST_OVERLAYS))


@dataclass
class LabSession:
    """A lab VM that stays up for several commands.

    Use as a context manager; ``run()`` executes a shell command in the
    already-booted guest. ``shared_dir`` is a host directory the guest can
    write at the same path, for results.
    """

    kernel: LabKernel = field(default_factory=LabKernel.stock)
    cpus: int = DEFAULT_CPUS
    memory: str = DEFAULT_MEMORY
    accel: str = "auto"
    boot_timeout: float = 300.0
    rwdirs: Sequence[Path] = ()
    progress: Progress = stderr_progress
    #: TCG only: "multi" (QEMU's default, one host thread per vCPU) or "single"
    #: (vCPUs take turns on one thread). Multi-threaded TCG can oops at boot
    #: while the kernel patches a static key with int3 (a vCPU runs a stale
    #: translation of the patched code); single removes that race at its
    #: root but serialises the vCPUs, which changes cross-CPU timings.
    tcg_threads: str = "multi"
    #: Boots that crash before the agent answers are retried this many times.
    boot_retries: int = MAX_BOOT_RETRIES
    #: Tests only: make the first N boot attempts panic before the agent starts.
    inject_boot_crashes: int = 0
    #: The machine's shape (sockets, cores, threads, NUMA nodes); None: ``cpus`` flat CPUs.
    #: Given, it sets ``cpus``.
    topology: Topology | None = None
    #: Whether this session is the kept lab's (wqkit.lab.kept), booted by another process.
    kept: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.topology is not None:
            self.cpus = self.topology.cpus
        check_cpus(self.cpus)
        memory_mib(self.memory)
        if self.tcg_threads not in TCG_THREADS:
            raise WqkitError(f"--tcg-threads must be one of {', '.join(TCG_THREADS)}, not {self.tcg_threads!r}")
        self._proc: subprocess.Popen | None = None
        self._messages: queue.Queue = queue.Queue()
        self._next_id = 0
        self._in_flight = False
        # One request at a time: the agent answers in order, and callers may
        # be several threads (a dashboard's refresh and a notebook cell).
        self._lock = threading.RLock()
        self._use_workdir(_new_session_dir())
        _LIVE_SESSIONS.add(self.workdir)
        self.shared_dir.mkdir()
        self.boot_id = ""
        self.guest_release = ""
        #: How QEMU entered the kernel: ``pvh+qboot`` or ``bzimage`` (wqkit.lab.firmware).
        self.boot_path = ""
        #: Guest-physical address of the kernel's VMCOREINFO note (None: the kernel publishes none).
        self.vmcoreinfo_paddr: int | None = None
        self.boot_seconds = 0.0
        #: The guest's uptime when its agent answered: the rest of boot_seconds is the host's
        #: (virtme-run's preparation, QEMU's start, firmware and kernel loading).
        self.guest_uptime_at_hello = 0.0
        #: One line per boot attempt that crashed before the agent answered (then retried).
        self.failed_boots: list[str] = []
        #: Objects tied to this boot, shared by its users and dropped when it closes
        #: (the host-side drgn program, the mapped guest RAM, see wqkit.inspect.lab).
        self.attachments: dict[str, object] = {}

    def _use_workdir(self, workdir: Path) -> None:
        """The session directory and the files of the VM in it."""
        self.workdir = workdir
        self.shared_dir = workdir / "shared"
        self.console_log = workdir / "console.log"
        # Two QMP sockets: drgn holds the first while it reads guest memory,
        # the second takes commands (stop/cont, memory dumps). See wqkit.lab.qmp.
        self.qmp_socket = workdir / "qmp.sock"
        self.qmp_control_socket = workdir / "qmp-control.sock"

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> LabSession:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        """Boot the guest and wait until its agent answers.

        A boot whose kernel crashes before the agent answers is retried up to
        ``boot_retries`` times, each said on the progress line and kept in
        ``failed_boots`` (with its console log as ``console-bootN.log``); a
        crash after the agent answered is never retried. Whatever stops it (an error, Ctrl-C,
        SIGTERM) stops the VM before it propagates: a ``with`` block whose ``__enter__`` raised
        never reaches ``__exit__``.
        """
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        self.kernel.check_bootable()
        self.kernel.link_tree_sources()
        _LIVE_SESSIONS.add(self.workdir)
        self.accel = choose_accel(self.accel, self._probe_kvm)
        threads = f", {self.tcg_threads}-threaded" if self.accel == "tcg" else ""
        self.progress(f"booting {self.kernel.label} under {self.accel.upper()}{threads} "
                      f"({self.cpus} CPUs, {self.memory}); console: {self.console_log}")
        for attempt in range(1, self.boot_retries + 2):
            try:
                self._boot(crash=attempt <= self.inject_boot_crashes)
                return
            except LabCrash as exc:
                if attempt > self.boot_retries:
                    raise
                kept = self.console_log.with_name(f"console-boot{attempt}.log")
                self.console_log.rename(kept)
                self.failed_boots.append(str(exc).replace(str(self.console_log), str(kept)))
                self.progress(f"boot {attempt} crashed before the guest answered ({exc}); retrying")

    def _boot(self, crash: bool = False) -> None:
        """One boot attempt: spawn the VM and wait for the agent's hello."""
        start = time.monotonic()
        self._messages = queue.Queue()
        guest = ["/bin/sh", "-c", "echo c > /proc/sysrq-trigger"] if crash else guest_command()
        self._spawn(self._qemu_command(self.accel, guest))
        hello = self._receive(self.boot_timeout, "boot")
        self.boot_seconds = time.monotonic() - start
        (self.workdir / "initramfs.img").unlink(missing_ok=True)     # QEMU read it at start
        self.boot_id = hello["boot_id"]
        self.guest_uptime_at_hello = hello["uptime"]
        self.guest_release = hello["release"]
        self.vmcoreinfo_paddr = hello.get("vmcoreinfo")
        self.progress(f"guest {self.guest_release} ready in {self.boot_seconds:.1f} s")

    def close(self) -> None:
        """Power the guest off (or kill it) and reap QEMU. Safe to call twice."""
        proc, self._proc = self._proc, None
        ram = self.attachments.get("guest-ram")
        self.attachments.clear()
        if ram is not None:
            ram.close()     # unmapped now: a mapping would keep the guest's RAM alive after QEMU exits
        if proc is None:
            _LIVE_SESSIONS.discard(self.workdir)
            return
        try:
            # Ask the agent to power off only when it is up and idle; else kill.
            if proc.poll() is None and proc.stdin and self.boot_id and not self._in_flight:
                proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=30)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        finally:
            _kill_group(proc)
            _LIVE_SESSIONS.discard(self.workdir)
            _prune_sessions()

    @property
    def alive(self) -> bool:
        """Whether the VM is still running."""
        return self._proc is not None and self._proc.poll() is None

    # -- commands --------------------------------------------------------

    def run(self, command: str, timeout: float = 600.0, check: bool = False) -> CommandResult:
        """Run a shell command in the guest as root and return its result.

        A command still running at ``timeout`` seconds is killed (its whole
        process group) and LabTimeout is raised; the session stays usable. A
        guest that stops answering is killed. A guest kernel panic raises
        LabCrash naming the panic.
        """
        answer = self._request({"cmd": command, "timeout": timeout}, timeout, f"`{command}`")
        if answer.get("timed_out"):
            raise LabTimeout(f"`{command}` still ran after {timeout:g} s in the lab and was killed")
        result = CommandResult.from_agent(command, answer)
        return result.check() if check else result

    def file_op(self, request: dict, timeout: float = 600.0) -> dict:
        """One of the agent's operations without a process (wqkit.lab.agent.file_op); its answer."""
        return self._request(request, timeout, f"the agent's {request['op']}")

    def ask(self, socket_path: str, line: str, timeout: float = 600.0, pid_file: str | None = None) -> str:
        """Send one line to a unix-socket server in the guest and return its reply line.

        The agent connects (waiting up to ``timeout`` for the server to come
        up, but failing at once if the process whose pid ``pid_file`` holds
        has exited), so no guest process is started per request.
        """
        answer = self._request({"socket": socket_path, "line": line, "timeout": timeout, "pid_file": pid_file},
                               timeout, f"a request to {socket_path}")
        if answer.get("timed_out"):
            raise LabTimeout(f"lab guest: {answer['error']}")
        if "error" in answer:
            raise LabError(f"lab guest: {answer['error']}")
        return answer["reply"]

    def qmp(self, timeout: float = 600.0) -> QmpClient:
        """A QMP connection to the guest's QEMU (its control socket)."""
        if not self.alive:
            raise LabError("the lab session is not running")
        return QmpClient(self.qmp_control_socket, timeout)

    @property
    def qemu_pid(self) -> int | None:
        """The pid of the guest's QEMU (the lab runs QEMU itself, as its child)."""
        return self._proc.pid if self._proc is not None else None

    def guest_ram(self) -> GuestRam:
        """The guest's RAM mapped into this process (once per boot, dropped when it closes)."""
        ram = self.attachments.get("guest-ram")
        if ram is None:
            if not self.alive:
                raise LabError("the lab session is not running")
            if self.qemu_pid is None:
                raise LabError("the lab's QEMU process is not known here")
            with self.qmp() as qmp:
                ram = GuestRam(self.qemu_pid, qmp.hmp)
            self.attachments["guest-ram"] = ram
        return ram

    def dump_vmcore(self, dest: Path, timeout: float = 600.0) -> Path:
        """Dump the guest's memory as an ELF vmcore (QEMU dump-guest-memory) for drgn."""
        dest = Path(dest).resolve()
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.qmp(timeout) as qmp:
            qmp.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{dest}"})
        return dest

    def console(self) -> str:
        """The guest's kernel console so far."""
        try:
            return self.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- internals -------------------------------------------------------

    def _request(self, request: dict, timeout: float, what: str) -> dict:
        """Send one request to the guest agent and wait for the answer that carries its id."""
        with self._lock:
            if not self.alive:
                raise LabError("the lab session is not running")
            self._next_id += 1
            request_id = self._next_id
            try:
                assert self._proc is not None and self._proc.stdin is not None
                self._proc.stdin.write(json.dumps({"id": request_id, **request}) + "\n")
                self._proc.stdin.flush()
            except OSError:
                self._raise_dead(f"while sending {what}")
            self._in_flight = True
            deadline = time.monotonic() + timeout + HANG_GRACE
            while True:
                answer = self._receive(max(0.0, deadline - time.monotonic()), what)
                if answer.get("id") == request_id:
                    break
                # An answer to an earlier request that its caller gave up on: not ours.
                self.progress(f"discarded a stale agent answer (id {answer.get('id')}, waiting for {request_id})")
            self._in_flight = False
            return answer

    def _qemu_command(self, accel: str, guest_cmd: list[str]) -> list[str]:
        """The QEMU command that boots the lab: virtme-ng's, with wqkit's guest init.

        ``virtme-run --dry-run`` (virtme-ng's engine, what ``vng --run`` calls)
        writes the initramfs into the session directory and prints its QEMU
        command. The lab runs that command itself (entering the kernel through
        its PVH entry when it can, wqkit.lab.firmware), with the guest's ``init=``
        changed from virtme-ng-init to wqkit's (wqkit/lab/guest_init.c), which
        boots without udev (see its comment), and the init's own words before
        it; virtme-ng's initramfs runs the last ``init=``, which virtme-run
        writes after every ``--kopt``: hence here. The root is mounted with
        9p's page cache (wqkit.lab.root_mount).
        """
        init = guest_init()
        initramfs = self.workdir / "initramfs.img"
        initramfs.unlink(missing_ok=True)
        virtme_run = self._virtme_run_command(accel, guest_cmd)
        proc = _dry_run(virtme_run, ["--save-initramfs", str(initramfs)], self.workdir)
        if proc.returncode != 0 and "initramfs is not used" in proc.stderr:
            # A kernel with 9p and virtio built in (wqkit's builds) boots without an initramfs:
            # the kernel mounts the root itself and runs init= (ours) directly.
            proc = _dry_run(virtme_run, [], self.workdir)
        lines = [line for line in proc.stdout.splitlines() if "qemu-system" in line]
        if proc.returncode != 0 or not lines:
            detail = (proc.stderr.strip().splitlines() or ["no QEMU command printed"])[-1]
            raise LabError(f"virtme-ng could not prepare the lab VM: {detail}")
        qemu = shlex.split(lines[-1])
        append = qemu.index("-append") + 1
        words = " ".join([*init_options(), f"init={init}"])
        qemu[append], replaced = re.subn(r"(^|\s)init=\S+$", lambda m: m.group(1) + words, qemu[append])
        if replaced != 1:
            raise LabError(f"virtme-ng's kernel command line does not end with init=: {qemu[append]}")
        if initramfs.is_file():
            cache_root_in_initramfs(initramfs)
        qemu[append] = cache_root_in_command_line(qemu[append])
        qemu, self.boot_path = direct_boot(qemu, self.kernel.debug_vmlinux)
        return qemu

    def _virtme_run_command(self, accel: str, guest_cmd: list[str]) -> list[str]:
        """virtme-run's arguments for this session (what ``vng --run`` would pass)."""
        virtme_run = shutil.which("virtme-run", path=_venv_env()["PATH"])
        if virtme_run is None:
            raise WqkitError("virtme-run (virtme-ng) not found; run `make setup`")
        cmd = [virtme_run, "--name", "wqkit-lab", "--kimg", str(self.kernel.boot_target), "--mods", "auto",
               "--script-sh", shlex.join(guest_cmd),
               "--cpus", str(self.cpus), "--memory", self.memory,
               # The console (kernel log at loglevel 7) goes to QEMU's stderr: console.log.
               "--show-boot-console", "--verbose",
               # The host's root goes to the guest over 9p: without this, virtme-ng first tries
               # virtiofsd and waits 3.1 s for it to fail before falling back to 9p, every boot.
               "--force-9p",
               "--kopt", "oops=panic",
               # The clocksource watchdog compares the TSC with an emulated HPET whose reads a busy
               # host delays: under TCG it marks the TSC unstable (skews of 0.1% seen) and moves
               # the kernel's clock to the HPET, whose rate no longer matches tsc_khz. The guest's
               # TSC is the host's; kept as clocksource, BPF's ns and the modules' TSC deltas agree.
               "--kopt", "tsc=reliable",
               # Boot time under TCG (guest up to `Run /init`: 3.1 s to 2.35, benchmarks/lab_speed.py):
               # no crypto self-tests (each asks for an algorithm's module through a modprobe
               # helper), and no check of the IO-APIC timer (QEMU's works; the check waits on it).
               "--kopt", "cryptomgr.notests", "--kopt", "no_timer_check"]
        cmd += [arg for option in VARIANT_KOPTS.get(self.kernel.variant or "", ()) for arg in ("--kopt", option)]
        for d in GUEST_OVERLAYS:
            cmd += ["--overlay-rwdir", d]
        # The guest must see wqkit's sources and venv, and the cache's kernels and
        # built modules, at their host paths, as the host last wrote them: each is a
        # 9p mount of its own (uncached) unless the shared root shows it fresh. Only
        # those parts of the cache are mounted: virtme-ng mounts read-only directories
        # after the writable ones, so a read-only cache would hide the shared
        # directory inside it.
        for d in (SOURCE_DIR, *(cache_dir() / name for name in GUEST_CACHE_DIRS)):
            if not read_fresh(d):
                d.mkdir(parents=True, exist_ok=True)
                cmd += ["--rodir", str(d.resolve())]
        for d in (self.shared_dir, *self.rwdirs):
            cmd += ["--rwdir", str(Path(d).resolve())]
        if accel == "tcg":
            cmd.append("--disable-kvm")
        # QMP for drgn on the host and for commands; vmcoreinfo lets drgn find
        # the kernel and its KASLR offset (over QMP and in memory dumps).
        qemu_opts = ["-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
                     "-qmp", f"unix:{self.qmp_control_socket},server=on,wait=off",
                     "-device", "vmcoreinfo"]
        if accel == "tcg" and self.tcg_threads == "single":
            qemu_opts += ["-accel", "tcg,thread=single"]
        # Guest RAM in memfd backends the host maps (wqkit.lab.guest_ram), NUMA nodes or not.
        qemu_opts += (self.topology.qemu_options(self.memory) if self.topology is not None
                      else machine_ram_options(memory_mib(self.memory)))
        return cmd + ["--qemu-opts", *qemu_opts]     # last: it takes the rest of the line

    def _spawn(self, cmd: list[str]) -> None:
        with open(self.console_log, "ab") as console:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=console,
                text=True, bufsize=1, cwd="/", start_new_session=True)
        (self.workdir / PGID_FILE).write_text(f"{self._proc.pid}\n")
        threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True).start()

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(AGENT_PREFIX):
                self._messages.put(json.loads(line[len(AGENT_PREFIX):]))
        self._messages.put(None)

    def _receive(self, timeout: float, what: str) -> dict:
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise LabTimeout(f"the lab guest did not finish {what} within {timeout:g} s; "
                             f"VM killed (console: {self.console_log})") from None
        if message is None:
            self._raise_dead(f"during {what}")
        return message

    def _raise_dead(self, when: str) -> None:
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.close()
        console = self.console()
        line = first_splat_line(console)
        if line is not None:
            raise LabCrash(f"the lab guest kernel crashed {when}: {line} (console: {self.console_log})")
        tail = [ln for ln in console.strip().splitlines() if ln.strip()][-1:] or ["no console output"]
        raise LabError(f"the lab VM stopped {when}: {tail[0].strip()} (console: {self.console_log})")

    def _probe_kvm(self) -> bool:
        """Boot once under KVM running `true`: the only reliable KVM test here."""
        self.progress("probing KVM (once per host kernel and QEMU version)")
        cmd = self._qemu_command("kvm", ["true"])
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=PROBE_TIMEOUT, start_new_session=True)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0


def _dry_run(virtme_run: list[str], extra: list[str], session_dir: Path) -> subprocess.CompletedProcess:
    """virtme-run's preparation only: it prints the QEMU command (``--qemu-opts`` stays last).
    Its temporary files (the script's exit-code file, which QEMU writes) go into the session
    directory: a dry run never removes them, and /tmp would collect one per boot."""
    cmd = [virtme_run[0], *extra, "--show-command", "--dry-run", *virtme_run[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(_venv_env(), TMPDIR=str(session_dir)),
                          cwd="/")


def _venv_env() -> dict[str, str]:
    """The environment virtme-run runs in: the venv's bin first."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill QEMU (and anything in its process group), then reap."""
    if proc.poll() is None or _group_alive(proc.pid):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(proc.pid):
                break
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream:
                stream.close()
        except OSError:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _new_session_dir() -> Path:
    root = cache_dir() / "lab"
    root.mkdir(exist_ok=True)
    path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    path.mkdir()
    (path / HOST_FILE).write_text(socket.gethostname() + "\n")
    return path


def _prune_sessions() -> None:
    """Keep the newest KEEP_SESSIONS session directories (console logs), and every
    session whose process still runs (another wqkit process's live VM)."""
    sessions = sorted((cache_dir() / "lab").iterdir(), key=lambda p: p.stat().st_mtime)
    for old in sessions[:-KEEP_SESSIONS]:
        if old not in _LIVE_SESSIONS and not _owner_alive(old):
            shutil.rmtree(old, ignore_errors=True)


def reap_orphans() -> list[int]:
    """Kill the VMs of sessions whose owning process died without closing them (a killed
    wqkit or Dask worker): their QEMU process group. Returns the groups killed."""
    killed = []
    root = cache_dir() / "lab"
    for session in root.iterdir() if root.is_dir() else ():
        pgid_file = session / PGID_FILE
        if session in _LIVE_SESSIONS or _owner_alive(session) or not pgid_file.is_file():
            continue
        pgid = int(pgid_file.read_text())
        pgid_file.unlink(missing_ok=True)
        if _group_alive(pgid) and _is_qemu_group(pgid):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pgid, sig)
                except (ProcessLookupError, PermissionError):      # gone, or another user's
                    break
                time.sleep(0.5)
            killed.append(pgid)
    return killed


def _is_qemu_group(pgid: int) -> bool:
    """Whether the group's leader is still a QEMU process (not a reused pid)."""
    try:
        return b"qemu" in Path(f"/proc/{pgid}/cmdline").read_bytes()
    except OSError:
        return False


def _owner_alive(session_dir: Path) -> bool:
    """Whether the process that made a session directory (TIME-PID-N) is still running; a
    session of another host (a shared cache) counts as alive: its PID means nothing here."""
    try:
        if (session_dir / HOST_FILE).read_text().strip() != socket.gethostname():
            return True
    except OSError:
        pass
    parts = session_dir.name.split("-")
    if len(parts) < 3 or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return int(parts[2]) != os.getpid()     # this process's live sessions are in _LIVE_SESSIONS
