"""Lab inspection, host side: snapshots of the lab guest's workqueues.

Two ways, both kept because they serve different needs:

- ``live``: drgn runs inside the guest (debug info loaded once, about 25 s
  under TCG); each snapshot is then one short request. For monitoring at an
  interval and for notebooks.
- ``vmcore``: QEMU dumps the guest's memory, and drgn reads it on the host at
  host speed. For a frozen, shareable picture of one moment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from shlex import quote

from wqkit.errors import LabCrash, LabError, WqkitError
from wqkit.inspect.guest import SOCKET
from wqkit.inspect.model import Snapshot
from wqkit.inspect.snapshot import take_snapshot
from wqkit.inspect.source import open_program
from wqkit.target import LabTarget

GUEST = f"{quote(sys.executable)} -m wqkit.inspect.guest"
PID_FILE = "/run/wqkit-inspect.pid"
LOG_FILE = "/run/wqkit-inspect.log"


class LabInspector:
    """Snapshots of a lab target's kernel, by drgn inside the guest."""

    def __init__(self, target: LabTarget) -> None:
        self.target = target
        self._started = False

    def start(self) -> None:
        """Start the guest-side server (it loads debug info in the background)."""
        if self._started:
            return
        kernel = self.target.kernel
        kernel.check_debug_info()
        # One server per guest, whichever inspector starts it first.
        self.target.run(f"[ -e {PID_FILE} ] || {{ setsid {GUEST} --vmlinux {quote(str(kernel.debug_vmlinux))} "
                        f"> {LOG_FILE} 2>&1 < /dev/null & echo $! > {PID_FILE}; }}", check=True)
        self._started = True

    def request(self, op: str, timeout: float = 900.0) -> dict:
        """Send ``snapshot`` or ``walk`` to the guest server; its answer carries
        ``seconds`` (time in the guest) and ``load_seconds`` (debug info load)."""
        self.start()
        try:
            out = self.target.session.ask(str(SOCKET), op, timeout, pid_file=PID_FILE)
            data = json.loads(out)
        except LabCrash:
            raise
        except (LabError, json.JSONDecodeError) as exc:
            raise WqkitError(f"no answer from the guest's inspect server ({exc}); {self._log_tail()}") from None
        if "error" in data:
            raise WqkitError(f"{op} failed in the guest: {data['error']}")
        return data

    def _log_tail(self) -> str:
        """The last line the guest server logged (its traceback's last line, if it died)."""
        if not self.target.alive:
            return "the lab VM has stopped"
        line = self.target.run(f"tail -n 1 {LOG_FILE}").stdout.strip()
        return f"last line of {LOG_FILE} in the guest: {line or '(empty)'}"

    def snapshot(self, timeout: float = 900.0) -> Snapshot:
        """One snapshot; the first waits for the debug info to load."""
        data = self.request("snapshot", timeout)
        for key in ("seconds", "load_seconds"):
            data.pop(key)
        return Snapshot.from_dict(data)


def vmcore_snapshot(target: LabTarget, dest: Path) -> Snapshot:
    """Dump the lab guest's memory to ``dest`` and take a snapshot from it on the host."""
    target.kernel.check_debug_info()
    target.session.dump_vmcore(dest)
    return take_snapshot(open_program(core=dest, vmlinux=target.kernel.debug_vmlinux))
