"""Benchmark: inspecting the lab from outside over QMP, against drgn inside the guest.

Run by hand (it boots the lab):
    .venv/bin/python benchmarks/qmp_inspection.py [--seconds 60] [--runs 3] [--nr 5000]

In one lab session, prints with the accelerator:
- the first QMP snapshot after the lab is up (attach, host debug-info load,
  snapshot; target <= 2 s) and then one full snapshot (best and median; target
  <= 10 ms), and a consistent one with its pause;
- 100 Hz sampling sustained for --seconds: achieved rate, missed periods
  (a snapshot still running when the next was due) and start-time jitter,
  for bare snapshots and for the StateSampler of --sample-state (idle guest,
  and with insert_exec runs going on);
- perturbation: guest CPU time per snapshot (guest /proc/stat, minus an idle
  period of the same length) for the in-guest server and for QMP, and the
  insert_exec median with the monitor sampling at 10 Hz alongside (QMP, in
  guest) against none, --runs runs each, so the difference can be read
  against the run-to-run noise.
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from wqkit import analysis
from wqkit.inspect.lab import LabInspector, QmpInspector
from wqkit.inspect.timeline import StateSampler
from wqkit.experiments.runner import run_experiment
from wqkit.target import LabTarget


def guest_busy_jiffies(target: LabTarget) -> int:
    """Non-idle jiffies of all guest CPUs (user+nice+system+irq+softirq+steal)."""
    fields = target.run("head -n1 /proc/stat", check=True).stdout.split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return user + nice + system + irq + softirq + steal


def guest_cpu_per_snapshot(target: LabTarget, take, count: int = 200) -> float:
    """Guest CPU ms per snapshot, idle drift subtracted."""
    start, t0 = guest_busy_jiffies(target), time.monotonic()
    for _ in range(count):
        take()
    busy, elapsed = guest_busy_jiffies(target) - start, time.monotonic() - t0
    idle_start = guest_busy_jiffies(target)
    time.sleep(elapsed)
    idle = guest_busy_jiffies(target) - idle_start
    hz = 100   # USER_HZ of /proc/stat
    return max(0, busy - idle) * 1000 / hz / count


def sample_at(take, hz: float, seconds: float, stop: threading.Event | None = None) -> tuple[int, int, list[float]]:
    """Take snapshots every 1/hz s: (done, missed periods, start lateness in s)."""
    period = 1 / hz
    start = time.monotonic()
    done = missed = 0
    late = []
    due = start
    while time.monotonic() - start < seconds and not (stop and stop.is_set()):
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        late.append(time.monotonic() - due)
        take()
        done += 1
        due += period
        while time.monotonic() > due + period:   # the next period is already over: missed
            missed += 1
            due += period
    return done, missed, late


def insert_exec_median(target, out: Path, nr: int, sampler=None) -> float:
    stop = threading.Event()
    thread = threading.Thread(target=sample_at, args=(sampler, 10, 3600, stop)) if sampler else None
    if thread:
        thread.start()
    try:
        path = run_experiment("insert_exec", {"nr": nr, "cpu": 0, "gap_us": 20}, target=target, out=out,
                              progress=lambda m: None)
    finally:
        stop.set()
        if thread:
            thread.join()
    return float(analysis.df_summary([analysis.load_run(path)])["p50_ns"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nr", type=int, default=5000)
    args = parser.parse_args()
    with LabTarget() as target, tempfile.TemporaryDirectory() as tmp:
        target.run("true")
        start = time.perf_counter()
        qmp = QmpInspector.for_lab(target)
        snap = qmp.snapshot()
        first = time.perf_counter() - start
        times = []
        for _ in range(50):
            t = time.perf_counter()
            qmp.snapshot()
            times.append(time.perf_counter() - t)
        consistent = qmp.snapshot(consistent=True)
        print(f"accelerator: {target.accel.upper()} ({target.release}); {len(snap.workqueues)} workqueues, "
              f"{len(snap.pools)} pools, {len(snap.workers)} workers")
        print(f"first QMP snapshot after the lab is up (attach + host debug info + snapshot): {first:.2f} s "
              "(target <= 2 s)")
        print(f"one QMP snapshot: best {min(times) * 1e3:.1f} ms, median {statistics.median(times) * 1e3:.1f} ms "
              f"(target <= 10 ms); consistent: guest paused {consistent.paused_seconds * 1e3:.1f} ms")
        done, missed, late = sample_at(qmp.snapshot, 100, args.seconds)
        print(f"100 Hz snapshots for {args.seconds:g} s: {done} snapshots ({done / args.seconds:.1f}/s), {missed} "
              f"missed periods, start lateness median {statistics.median(late) * 1e3:.2f} ms, "
              f"p99 {sorted(late)[int(len(late) * 0.99)] * 1e3:.2f} ms")
        for load in ("idle guest", "insert_exec running"):
            sampler = StateSampler(qmp, 100)
            sampler.start()
            if load == "idle guest":
                time.sleep(args.seconds)
            else:
                ends = time.monotonic() + args.seconds
                while time.monotonic() < ends:
                    run_experiment("insert_exec", {"nr": 20000, "gap_us": 20}, target=target, out=Path(tmp),
                                   progress=lambda m: None)
            _, info = sampler.stop()
            print(f"StateSampler (--sample-state 100), {load}, {info['seconds']:g} s: {info['samples']} samples, "
                  f"{info['achieved_hz']} Hz, {info['missed_periods']} missed and {info['torn_periods']} torn periods, lateness median "
                  f"{info['lateness_median_ms']} ms, sampler nice {info['sampler_nice']}", flush=True)
        guest = LabInspector(target)
        guest.snapshot()    # load the debug info in the guest first
        print(f"guest CPU per snapshot: in-guest server {guest_cpu_per_snapshot(target, guest.snapshot):.2f} ms, "
              f"QMP {guest_cpu_per_snapshot(target, qmp.snapshot):.2f} ms")
        out = Path(tmp)
        for name, sampler in (("none", None), ("QMP at 10 Hz", qmp.snapshot), ("in guest at 10 Hz", guest.snapshot)):
            medians = [insert_exec_median(target, out, args.nr, sampler) for _ in range(args.runs)]
            print(f"insert_exec median with {name:18}: " + ", ".join(analysis.format_duration(m) for m in medians)
                  + f" (spread {analysis.format_duration(max(medians) - min(medians))})", flush=True)


if __name__ == "__main__":
    main()
