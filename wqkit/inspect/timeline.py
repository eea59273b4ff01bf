"""A timeline of workqueue state sampled from the host while an experiment runs.

A :class:`StateSampler` reads the lab guest's workqueue counters from the host
(wqkit.inspect.counters), out of its RAM mapped into this process (or over
QMP; nothing runs in the guest), at a fixed rate in a thread of its own, and
keeps, per sample, each pool's workers, idle workers, running workers and pending items
and each workqueue's started and completed counters, with two guest clocks
read in the same pass:

- ``jiffies``;
- ``tsc``: the timekeeper's ``tkr_mono.cycle_last``, the TSC value at the
  last timekeeping update: the same clock as the samples' ``t0`` and ``t1``
  when the clocksource is the TSC. It lags the read by a tick (1/CONFIG_HZ:
  4 ms on Debian's kernels) or, when the guest's CPUs idle with their tick
  stopped, more; with ``host_time`` (taken just before the clocks are read)
  and ``clock_s`` (the seconds from it until both clocks were read) it places
  each row on the samples' timeline (wqkit.analysis.state).
- ``read_s``: how long the whole read took from ``host_time``: a row's
  counters were read somewhere in that time (under a millisecond from the
  guest's RAM, a few ms over QMP; more when the host is busy).

A period whose snapshot met lists changing under it on every attempt (a
worklist under a flood) is counted as torn and left without a row.
"""

from __future__ import annotations

import ctypes
import gc
import os
import statistics
import struct
import sys
import threading
import time

import pandas as pd

from wqkit.inspect.counters import PoolCounters, WorkqueueCounters, read_counters
from wqkit.inspect.helpers import ListChanged, core_timekeeper
from wqkit.inspect.lab import HostInspector
from wqkit.inspect.snapshot import retried

MAX_HZ = 1000.0
#: The interpreter's thread switch interval while a sampler runs (seconds), a fifth of its 1 kHz period.
SWITCH_INTERVAL_S = 0.0002
COLUMNS = ["sample", "host_time", "read_s", "clock_s", "jiffies", "tsc", "kind", "id", "workers", "idle", "running", "pending",
           "started", "completed"]


class StateSampler:
    """Snapshots at ``hz`` in a thread, from :meth:`start` until :meth:`stop` returns the rows."""

    def __init__(self, inspector: HostInspector, hz: float) -> None:
        if not 0 < hz <= MAX_HZ:
            raise ValueError(f"--sample-state must be between 0 and {MAX_HZ:g} Hz, not {hz:g}")
        self.inspector, self.hz = inspector, hz
        self._rows: list[tuple] = []
        self._late: list[float] = []
        self._missed = 0
        self._torn = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._started = 0.0
        self._switch_interval = sys.getswitchinterval()

    def start(self) -> None:
        prog = self.inspector.prog     # attach and load debug info before the experiment starts
        tk = core_timekeeper(prog).timekeeper.tkr_mono.cycle_last
        self._clock = (prog["jiffies"].address_, tk.address_)
        # The heap that exists now (drgn's types, pandas...) is never garbage: keep the
        # collector's full passes, which would stall the sampler, off it.
        gc.freeze()
        # The sampler shares the GIL with the run's own thread; by default a thread waiting for
        # it waits up to 5 ms, five periods at 1 kHz. Sampling, the holder hands it over sooner.
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_S))
        self._thread = threading.Thread(target=self._run, name="wqkit-state-sampler", daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        prog, period, due, sample = self.inspector.prog, 1 / self.hz, time.monotonic(), 0
        self._priority = _raise_priority()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now < due:
                    self._stop.wait(due - now)
                    continue
                self._late.append(now - due)
                try:
                    with self.inspector.lock:
                        self._take(prog, sample)
                    sample += 1
                except ListChanged:
                    # Lists that kept changing under SNAPSHOT_ATTEMPTS reads (a worklist under a
                    # flood): this period has no row, and the next one is taken as planned.
                    self._torn += 1
                due += period
                while time.monotonic() > due + period:
                    self._missed += 1
                    due += period
        except BaseException as exc:     # reported by stop(): the experiment itself goes on
            self._error = exc

    def _read(self, prog) -> tuple[float, float, int, int, list[PoolCounters], list[WorkqueueCounters]]:
        host = time.time()       # when the guest's clocks are read, then its state
        jiffies, tsc = (prog.read_u64(address) for address in self._clock)
        return host, time.time() - host, jiffies, tsc, *read_counters(prog)

    def _take(self, prog, sample: int) -> None:
        host, clock, jiffies, tsc, pools, workqueues = retried(self._read, prog)
        read = time.time() - host        # the row's counters were read within this time after host
        rows = self._rows
        for pool in pools:
            rows.append((sample, host, read, clock, jiffies, tsc, "pool", str(pool.id), pool.workers,
                         pool.idle, pool.running, pool.pending, None, None))
        seen: dict[str, int] = {}
        for wq in workqueues:
            # Names are not unique (6.12.95 has two "events"): the second is "events#1".
            occurrence = seen[wq.name] = seen.get(wq.name, -1) + 1
            name = wq.name if not occurrence else f"{wq.name}#{occurrence}"
            rows.append((sample, host, read, clock, jiffies, tsc, "workqueue", name, None, None, None,
                         wq.nr_active, wq.started, wq.completed))

    def stop(self) -> tuple[pd.DataFrame, dict]:
        """Stop sampling; return the rows and what meta.json says of them (rate, missed periods, jitter)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        gc.unfreeze()
        sys.setswitchinterval(self._switch_interval)
        seconds = time.monotonic() - self._started
        frame = pd.DataFrame(self._rows, columns=COLUMNS)
        samples = int(frame["sample"].nunique()) if len(frame) else 0
        info = {"hz": self.hz, "samples": samples, "seconds": round(seconds, 3),
                "achieved_hz": round(samples / seconds, 2) if seconds else 0.0, "missed_periods": self._missed,
                "torn_periods": self._torn,
                "sampler_sched": getattr(self, "_priority", None),
                "lateness_median_ms": round(statistics.median(self._late) * 1e3, 3) if self._late else None,
                "clock": "tsc = the core timekeeper's tkr_mono.cycle_last (the last timekeeping update before "
                         "the read at host_time)",
                "error": None if self._error is None else str(self._error)}
        return frame, info


#: The sampler thread's nice value when allowed (root): ahead of the other threads of its own
#: process. Not of the lab's QEMU threads when the host groups sessions (autogroup): each QEMU is a
#: session of its own, and nice values weigh threads only within a group.
SAMPLER_NICE = -10
#: The sampler thread's time slice under EEVDF (Linux 6.12 and later: a SCHED_OTHER thread's
#: sched_attr.sched_runtime, which any user may set on their own threads), the shortest the kernel
#: takes. A woken thread with a shorter slice than the running one's (the QEMU vCPU threads keep
#: the default, 0.75 ms times a factor for the CPU count) preempts it at once, instead of waiting
#: for it to use its slice up: the difference, on a host whose CPUs all run vCPUs, between a period
#: taken in time and one missed.
SAMPLER_SLICE_NS = 100_000
#: sched_setattr and sched_getattr by machine.
_SYS_SCHED_ATTR = {"x86_64": (314, 315), "aarch64": (274, 275)}
#: struct sched_attr, SCHED_ATTR_SIZE_VER0: size, policy, flags, nice, priority, runtime, deadline, period.
_SCHED_ATTR = struct.Struct("IIQiIQQQ")


def _raise_priority() -> dict:
    """Give the calling thread nice SAMPLER_NICE when permitted, and a SAMPLER_SLICE_NS slice
    when the kernel takes custom slices; what it has then (meta.json's ``sampler_sched``)."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, SAMPLER_NICE)
    except PermissionError:
        pass
    nice = os.getpriority(os.PRIO_PROCESS, tid)
    return {"nice": nice, "slice_ns": SAMPLER_SLICE_NS if _set_slice(nice, SAMPLER_SLICE_NS) else None}


def _set_slice(nice: int, slice_ns: int) -> bool:
    """Set the calling thread's EEVDF slice (SCHED_OTHER, its nice kept); whether the kernel took it."""
    numbers = _SYS_SCHED_ATTR.get(os.uname().machine)
    if numbers is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(_SCHED_ATTR.pack(_SCHED_ATTR.size, os.SCHED_OTHER, 0, nice, 0, slice_ns, 0, 0))
    if libc.syscall(numbers[0], 0, attr, 0) != 0:
        return False
    # Kernels before 6.12 accept the call but ignore a SCHED_OTHER thread's runtime (and read it back as 0).
    back = ctypes.create_string_buffer(_SCHED_ATTR.size)
    return (libc.syscall(numbers[1], 0, back, _SCHED_ATTR.size, 0) == 0
            and _SCHED_ATTR.unpack(back.raw)[5] == slice_ns)
