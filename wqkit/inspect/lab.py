"""Lab inspection, host side: snapshots of the lab guest's workqueues.

Four ways:

- ``ram`` (the default): drgn on the host reads the running guest's RAM,
  which the lab's QEMU keeps in memfd backends the host maps
  (wqkit.lab.guest_ram). Nothing runs in the guest; debug info loads on the
  host in a third of a second, then a snapshot takes well under a
  millisecond. ``consistent`` stops the vCPUs around the read (QMP
  stop/cont), so the snapshot is one moment of the guest rather than a read
  racing it (a live read that meets a list changing under it is detected,
  retried, then taken paused: wqkit.inspect.snapshot.retried).
- ``qmp``: the same from QEMU's QMP socket (drgn's own QEMU support): for any
  QEMU guest, and the fallback when the lab's RAM cannot be mapped.
- ``guest``: drgn runs inside the guest (debug info loaded once, about 25 s
  under TCG); each snapshot is then one short request. It sees what an
  in-guest tool sees, and competes with the guest's own work.
- ``vmcore``: QEMU dumps the guest's memory, and drgn reads it on the host at
  host speed. For a frozen, shareable picture of one moment.
"""

from __future__ import annotations

import json
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Callable, Iterator

import drgn

from wqkit.errors import LabCrash, LabError, WqkitError
from wqkit.inspect.guest import SOCKET
from wqkit.inspect.helpers import ListChanged
from wqkit.inspect.model import Snapshot
from wqkit.inspect.snapshot import take_snapshot
from wqkit.inspect.source import attach_qmp, attach_ram, load_vmlinux, map_direct, open_program
from wqkit.target import LabTarget

if TYPE_CHECKING:
    from wqkit.lab.guest_ram import GuestRam

VIAS = ("ram", "qmp", "guest", "vmcore")

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


class HostInspector:
    """Snapshots of a running QEMU guest, read from the host (nothing runs in the guest).

    ``attach`` makes the drgn program: over the guest's RAM mapped into this
    process (``ram``, see :func:`attach_ram`; the lab's) or over a QMP socket
    (:func:`attach_qmp`, any QEMU). ``control`` is a QMP socket of the same
    QEMU for stop/cont, needed only when ``consistent``. ``via`` names the
    path (``ram`` or ``qmp``) and stays in what the readers record.
    """

    def __init__(self, attach: Callable[[], drgn.Program], key: str, via: str, vmlinux: Path,
                 control: Path | None = None, consistent: bool = False, attachments: dict | None = None,
                 ram: GuestRam | None = None) -> None:
        if consistent and control is None:
            raise WqkitError("--consistent needs a second QMP socket of the same QEMU (stop/cont)")
        self._attach, self.key, self.via, self.ram = attach, key, via, ram
        self.vmlinux, self.control, self.consistent = vmlinux, control, consistent
        # Where the program is kept: every inspector of a lab session shares the session's
        # program (a QMP socket serves one client; debug info loads once).
        self._attachments = attachments if attachments is not None else {}

    @classmethod
    def for_qmp(cls, socket: Path, vmlinux: Path, control: Path | None = None,
                consistent: bool = False) -> HostInspector:
        """Any QEMU guest started with ``-qmp unix:SOCKET,server=on`` and ``-device vmcoreinfo``."""
        return cls(lambda: attach_qmp(socket), f"qmp:{socket}", "qmp", vmlinux, control, consistent)

    @classmethod
    def for_lab(cls, target: LabTarget, consistent: bool = False, via: str = "ram") -> HostInspector:
        """The inspector of a lab session (booting it if needed), sharing its drgn program:
        over the guest's RAM (``via="ram"``, the default) or over QMP (``via="qmp"``; also
        what ``ram`` falls back to when the guest's RAM cannot be mapped, said on stderr)."""
        target.kernel.check_debug_info()
        if not target.alive:
            target.session.start()
        session = target.session
        if via == "ram":
            try:
                ram = session.guest_ram()
                if session.vmcoreinfo_paddr is None:
                    raise LabError("the guest kernel publishes no /sys/kernel/vmcoreinfo")
                paddr = session.vmcoreinfo_paddr
                return cls(lambda: attach_ram(ram, paddr), "ram", "ram", target.kernel.debug_vmlinux,
                           session.qmp_control_socket, consistent, session.attachments, ram)
            except LabError as exc:
                print(f"wqkit: reading the lab over QMP: its RAM is not mapped ({exc})", file=sys.stderr)
        return cls(lambda: attach_qmp(session.qmp_socket), "qmp", "qmp", target.kernel.debug_vmlinux,
                   session.qmp_control_socket, consistent, session.attachments)

    @property
    def lock(self) -> threading.RLock:
        """Held by whoever reads through the shared program: one drgn program (and one QMP
        connection) serves one reader at a time (a state sampler's thread and a run's sample read
        share it)."""
        return self._attachments.setdefault(f"drgn-lock:{self.key}", threading.RLock())

    @property
    def prog(self) -> drgn.Program:
        """The drgn program, attached and with debug info loaded on first use. Read through it
        inside :meth:`reading` when another thread may use it too."""
        with self.lock:
            prog = self._attached()
            loaded = f"drgn-vmlinux:{self.key}"
            if loaded not in self._attachments:
                load_vmlinux(prog, self.vmlinux)
                if self.ram is not None:
                    map_direct(prog, self.ram)
                self._attachments[loaded] = True
        return prog

    def _attached(self) -> drgn.Program:
        key = f"drgn:{self.key}"
        if key not in self._attachments:
            self._attachments[key] = self._attach()
        return self._attachments[key]

    @contextmanager
    def reading(self) -> Iterator[drgn.Program]:
        """The program, for reads no other thread interleaves with."""
        with self.lock:
            yield self.prog

    @contextmanager
    def reading_memory(self) -> Iterator[drgn.Program]:
        """The program, perhaps without debug info (not loaded for this alone): for reads of
        memory at known addresses that no other thread interleaves with."""
        with self.lock:
            yield self._attached()

    def snapshot(self, consistent: bool | None = None) -> Snapshot:
        """One snapshot; with ``consistent`` (default: the inspector's), the guest is stopped around it.

        A live read that stays torn (a list of thousands of pending items churning faster than
        it can be walked) is taken again with the guest stopped, when this inspector can stop
        it: the snapshot then says how long the guest was paused.
        """
        if not (self.consistent if consistent is None else consistent):
            try:
                with self.reading() as prog:
                    return take_snapshot(prog)
            except ListChanged:
                if self.control is None:
                    raise
        if self.control is None:
            raise WqkitError("a consistent snapshot needs a second QMP socket of the same QEMU (stop/cont)")
        from wqkit.lab.qmp import QmpClient

        with QmpClient(self.control) as qmp, qmp.paused() as pause, self.reading() as prog:
            snap = take_snapshot(prog)
        snap.paused_seconds = pause.seconds
        return snap
