"""A minimal QMP client: QEMU's JSON machine protocol over a unix socket.

The lab starts QEMU with two QMP sockets: ``qmp.sock``, which drgn holds
while it reads guest memory from the host (a QMP socket serves one client at
a time), and ``qmp-control.sock`` for commands: stopping and continuing the
vCPUs around a consistent read, and dumping guest memory.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from wqkit.errors import LabError


class QmpClient:
    """One QMP connection; :meth:`execute` sends a command and returns its result."""

    def __init__(self, path: Path, timeout: float = 600.0) -> None:
        self.path = Path(path)
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.settimeout(timeout)
        try:
            self._conn.connect(str(self.path))
        except OSError as exc:
            self._conn.close()
            raise LabError(f"no QEMU answers on {self.path} ({exc.strerror or exc})") from None
        self._stream = self._conn.makefile("rw")
        if "QMP" not in self._read():
            raise LabError(f"{self.path} is not a QMP socket")
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        line = self._stream.readline()
        if not line:
            raise LabError(f"QEMU closed {self.path}")
        return json.loads(line)

    def execute(self, command: str, arguments: dict | None = None) -> object:
        """Run one QMP command and return its ``return`` value (events in between are skipped)."""
        self._stream.write(json.dumps({"execute": command, **({"arguments": arguments} if arguments else {})})
                           + "\n")
        self._stream.flush()
        while True:
            reply = self._read()
            if "error" in reply:
                raise LabError(f"QEMU refused {command}: {reply['error'].get('desc')}")
            if "return" in reply:
                return reply["return"]

    def hmp(self, command_line: str) -> str:
        """One human-monitor command (``info mtree -f``, ``gpa2hva ADDR``) and its output."""
        return str(self.execute("human-monitor-command", {"command-line": command_line}))

    def paused(self) -> "PausedGuest":
        """A context manager that stops the vCPUs and continues them on exit, timing the pause."""
        return PausedGuest(self)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._conn.close()

    def __enter__(self) -> QmpClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class PausedGuest:
    """``with qmp.paused() as pause:`` — the guest's vCPUs are stopped inside; ``pause.seconds`` after."""

    def __init__(self, qmp: QmpClient) -> None:
        self.qmp = qmp
        self.seconds = 0.0
        self._start = 0.0
        self._was_running = True

    def __enter__(self) -> PausedGuest:
        self._was_running = bool(self.qmp.execute("query-status").get("running"))
        self._start = time.monotonic()
        if self._was_running:
            self.qmp.execute("stop")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._was_running:
            self.qmp.execute("cont")
        self.seconds = time.monotonic() - self._start
