"""A lab kept running between commands: ``wqkit lab up`` boots it once, later runs attach to it.

Every wqkit command, notebook kernel or papermill run otherwise boots a lab
of its own. A kept lab is one :class:`~wqkit.lab.vm.LabSession` in a
background process (``python -m wqkit.lab.kept``) that serves its guest
agent's requests on a unix socket in the session directory and describes
itself in ``~/.cache/wqkit/lab-up.json``. A lab target asked for the same
kernel, CPUs, memory and TCG threading attaches to it instead of booting
(:func:`attach`); its runs record the kept lab's boot like any other. The
guest is shared: runs of two processes at once share its CPUs, as they
would on one machine. ``wqkit lab down`` stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import ClassVar

from wqkit.errors import LabError, WqkitError
from wqkit.lab.choose import resolve_kernel
from wqkit.lab.kernel import LabKernel
from wqkit.lab.topology import Topology, parse_topology
from wqkit.lab.vm import LabSession, Progress, stderr_progress
from wqkit.paths import cache_dir

SOCKET_NAME = "agent.sock"
#: Seconds `wqkit lab up` waits for the kept lab's first answer (a first TCG boot is long).
UP_TIMEOUT = 600.0


def record_path() -> Path:
    """Where the kept lab describes itself (one kept lab per user)."""
    return cache_dir() / "lab-up.json"


def running() -> dict | None:
    """The kept lab's record, if its server process still runs (a stale record is removed)."""
    path = record_path()
    try:
        record = json.loads(path.read_text())
        os.kill(record["pid"], 0)
    except (OSError, ValueError, KeyError):
        path.unlink(missing_ok=True)
        return None
    return record


def _matches(record: dict, kernel: LabKernel, cpus: int, memory: str, accel: str, tcg_threads: str,
             topology: Topology | None) -> bool:
    return (record["image"] == str(kernel.image) and record["cpus"] == cpus and record["memory"] == memory
            and accel in ("auto", record["accel"]) and record["tcg_threads"] == tcg_threads
            and record.get("topology") == (topology.text if topology else None))


@dataclass
class AttachedSession(LabSession):
    """A LabSession whose guest is the kept lab's: requests go over its socket; closing it
    leaves the kept lab running."""

    record: dict | None = None
    kept: ClassVar[bool] = True

    def __post_init__(self) -> None:
        assert self.record is not None
        record = self.record
        self._lock = threading.RLock()
        self._conn: socket.socket | None = None
        self._in_flight = False
        self._proc = None
        self._use_workdir(Path(record["workdir"]))
        self.accel = record["accel"]
        self.boot_id = record["boot_id"]
        self.guest_release = record["release"]
        self.boot_seconds = record["boot_seconds"]
        self.guest_uptime_at_hello = record["guest_uptime_at_hello"]
        self.failed_boots = record["failed_boots"]
        self.vmcoreinfo_paddr = record.get("vmcoreinfo_paddr")
        self.boot_path = record.get("boot_path", "")
        self.attachments: dict[str, object] = {}

    def start(self) -> None:
        with self._lock:
            if self._conn is None:
                self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    self._conn.connect(str(self.workdir / SOCKET_NAME))
                except OSError as exc:
                    self._conn = None
                    raise LabError(f"the kept lab does not answer ({exc.strerror or exc}); "
                                   "`wqkit lab down`, then `wqkit lab up`") from None
                self._stream = self._conn.makefile("rw")
        self.progress(f"attached to the kept lab ({self.kernel.label}, boot {self.boot_id[:8]}, "
                      f"up since {time.strftime('%H:%M:%S', time.localtime(self.record['started']))})")

    @property
    def alive(self) -> bool:
        return self._conn is not None and running() is not None

    @property
    def qemu_pid(self) -> int | None:
        """The kept lab's QEMU (a child of the kept lab's process; this one maps its RAM too)."""
        return self.record.get("qemu_pid")

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            self.attachments.clear()
            if conn is not None:
                self._stream.close()
                conn.close()

    def _request(self, request: dict, timeout: float, what: str) -> dict:
        with self._lock:
            if self._conn is None:
                raise LabError("the kept lab session is not attached")
            try:
                self._stream.write(json.dumps(request) + "\n")
                self._stream.flush()
                line = self._stream.readline()
            except OSError as exc:
                line = ""
                what += f" ({exc.strerror or exc})"
            if not line:
                self.close()
                raise LabError(f"the kept lab went away during {what}; `wqkit lab up` starts another")
            answer = json.loads(line)
            if "lab_error" in answer:
                raise LabError(f"kept lab: {answer['lab_error']}")
            return answer


def attach(**lab_options) -> AttachedSession | None:
    """A session on the kept lab if one runs with these LabSession options, else None.

    Options left out take LabSession's defaults; a session asking for host
    directories of its own (``rwdirs``) cannot use the kept lab's guest.
    """
    record = running()
    if record is None or lab_options.get("rwdirs"):
        return None
    wanted = {f.name: lab_options.get(f.name, f.default if f.default is not MISSING else f.default_factory())
              for f in fields(LabSession) if f.name in ("kernel", "cpus", "memory", "accel", "tcg_threads", "topology")}
    if wanted["topology"] is not None:
        wanted["cpus"] = wanted["topology"].cpus
    if not _matches(record, **wanted):
        return None
    return AttachedSession(**wanted, progress=lab_options.get("progress", stderr_progress), record=record)


def serve(session: LabSession, stop: threading.Event) -> None:
    """Answer agent requests from any number of clients until ``stop`` is set."""
    path = session.workdir / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        server.settimeout(0.5)
        while not stop.is_set() and session.alive:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            threading.Thread(target=_client, args=(session, conn, stop), daemon=True).start()


def _client(session: LabSession, conn: socket.socket, stop: threading.Event) -> None:
    with conn, conn.makefile("rw") as stream:
        for line in stream:
            request = json.loads(line)
            if request.get("op") == "stop":
                stop.set()
                return
            timeout = float(request.get("timeout", 600.0))
            try:
                answer = session._request(request, timeout, "a kept-lab request")
            except WqkitError as exc:
                answer = {"lab_error": str(exc)}
            stream.write(json.dumps(answer) + "\n")
            stream.flush()


def _record(session: LabSession) -> dict:
    return {"pid": os.getpid(), "started": time.time(), "image": str(session.kernel.image),
            "label": session.kernel.label, "cpus": session.cpus, "memory": session.memory, "accel": session.accel,
            "tcg_threads": session.tcg_threads, "topology": session.topology.text if session.topology else None,
            "workdir": str(session.workdir), "boot_id": session.boot_id,
            "release": session.guest_release, "boot_seconds": session.boot_seconds,
            "guest_uptime_at_hello": session.guest_uptime_at_hello, "failed_boots": session.failed_boots,
            "qemu_pid": session.qemu_pid, "vmcoreinfo_paddr": session.vmcoreinfo_paddr,
            "boot_path": session.boot_path}


def up(kernel: str | None = None, cpus: int = LabSession.cpus, memory: str = LabSession.memory,
       accel: str = LabSession.accel, tcg_threads: str = LabSession.tcg_threads,
       topology: Topology | None = None, progress: Progress = stderr_progress) -> dict:
    """Start the kept lab in the background and wait for its first answer; its record. Options
    left out take LabSession's defaults, as runs that attach to it do."""
    if (record := running()) is not None:
        raise WqkitError(f"a kept lab is already up ({record['label']}); `wqkit lab down` first")
    log = cache_dir() / "lab-up.log"
    cmd = [sys.executable, "-m", "wqkit.lab.kept", "--cpus", str(cpus), "--memory", memory, "--accel", accel,
           "--tcg-threads", tcg_threads] + (["--kernel", kernel] if kernel else []) + \
        (["--topology", topology.text] if topology else [])
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    progress(f"booting the kept lab in the background (log: {log})")
    deadline = time.monotonic() + UP_TIMEOUT
    while (record := running()) is None:
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            tail = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise LabError(f"the kept lab did not come up: {tail} (log: {log})")
        time.sleep(0.5)
    return record


def down(timeout: float = 60.0) -> dict | None:
    """Stop the kept lab (its VM with it); its record, or None if none was up."""
    record = running()
    if record is None:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(Path(record["workdir"]) / SOCKET_NAME))
            conn.sendall(b'{"op": "stop"}\n')
    except OSError:
        os.kill(record["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running() is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if running() is not None:
        os.kill(record["pid"], signal.SIGKILL)
        record_path().unlink(missing_ok=True)
    return record


def main() -> None:
    """The kept lab's server process (started by :func:`up`)."""
    parser = argparse.ArgumentParser(prog="python -m wqkit.lab.kept")
    parser.add_argument("--kernel")
    parser.add_argument("--cpus", type=int, required=True)
    parser.add_argument("--memory", required=True)
    parser.add_argument("--accel", required=True)
    parser.add_argument("--tcg-threads", required=True)
    parser.add_argument("--topology")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    session = LabSession(kernel=resolve_kernel(args.kernel), cpus=args.cpus, memory=args.memory, accel=args.accel,
                         tcg_threads=args.tcg_threads,
                         topology=parse_topology(args.topology) if args.topology else None)
    try:
        session.start()
        record_path().write_text(json.dumps(_record(session), indent=1) + "\n")
        serve(session, stop)
    finally:
        record_path().unlink(missing_ok=True)
        session.close()


if __name__ == "__main__":
    main()
