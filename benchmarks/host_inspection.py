"""Benchmark: inspecting the lab from the host, its RAM mapped directly against QMP.

Run by hand (it boots the lab):
    .venv/bin/python benchmarks/host_inspection.py [--seconds 30] [--runs 3] [--nr 5000] [--samples 1000000]

In one lab session, for each host path, ``qmp`` (drgn's QEMU support: the
baseline) and ``ram`` (the guest's memfd RAM mapped here, the default), prints
with the accelerator and the ratio ram/qmp:
- the first snapshot after the lab is up (attach, host debug-info load,
  snapshot), one full snapshot (best and median; target <= 1 ms for ram) and a
  consistent one with its pause;
- the StateSampler of --sample-state for --seconds, idle and under insert_exec
  bursts: achieved rate, missed and torn periods (qmp at 100 Hz, its old limit;
  ram at 1 kHz, target 0 missed), and the floor: the same thread and schedule
  with no read (what the host's own stalls make it miss);
- reading an insert_exec run's --samples sample array out of guest memory
  (samples/s; target >= 100M/s for ram), and that read plus parsing and
  writing Parquet;
- perturbation: guest CPU time per snapshot (guest /proc/stat, minus an idle
  period of the same length) for the in-guest server and both host paths, and
  the insert_exec median with a 10 Hz monitor alongside against none, --runs
  runs each, so the difference can be read against the run-to-run noise.
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from wqkit import analysis
from wqkit.experiments import kmod
from wqkit.experiments.runner import collect, follow, run_experiment
from wqkit.experiments.samples import RecorderStats
from wqkit.inspect.lab import HostInspector, LabInspector
from wqkit.inspect.timeline import StateSampler
from wqkit.runs.spec import experiment
from wqkit.target import LabTarget

#: The sampler's rate per path: QMP's old ceiling, and the 1 kHz the mapped RAM is for.
SAMPLER_HZ = {"qmp": 100, "ram": 1000}


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


def snapshot_figures(inspector: HostInspector) -> dict:
    start = time.perf_counter()
    snap = inspector.snapshot()
    first = time.perf_counter() - start
    times = []
    for _ in range(200):
        t = time.perf_counter()
        inspector.snapshot()
        times.append(time.perf_counter() - t)
    pauses = [inspector.snapshot(consistent=True).paused_seconds for _ in range(20)]
    return {"snap": snap, "first_s": first, "best_ms": min(times) * 1e3, "median_ms": statistics.median(times) * 1e3,
            "pause_ms": statistics.median(pauses) * 1e3}


class ScheduleOnly(StateSampler):
    """The sampler's thread, priority and schedule with no read: the periods this machine alone
    makes it miss (the host's own stalls; this machine is itself a VM), the floor of the real one's."""

    def _take(self, prog, sample: int) -> None:
        pass


def sampler_figures(target: LabTarget, inspector: HostInspector, hz: float, seconds: float, busy: bool,
                    out: Path, sampler_class: type[StateSampler] = StateSampler) -> dict:
    sampler = sampler_class(inspector, hz)
    sampler.start()
    if busy:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            run_experiment("insert_exec", {"nr": 20000, "gap_us": 20}, target=target, out=out, progress=lambda m: None)
    else:
        time.sleep(seconds)
    _, info = sampler.stop()
    return info


def sample_read_figures(target: LabTarget, inspectors: dict[str, HostInspector], nr: int, out: Path) -> dict:
    """Per path: seconds to read the finished sample array out of guest memory, and to read,
    parse and write it as Parquet (wqkit.experiments.runner.collect)."""
    exp = experiment("insert_exec")
    target.ensure_mounted("debugfs", "/sys/kernel/debug")
    figures = {}
    with kmod.loaded(target, exp.module, {"nr": nr}, progress=lambda m: None):
        follow(exp, target, nr, timeout=3600)
        stats = RecorderStats.parse(target.read(f"{exp.debugfs_dir}/stats"))
        size = stats.capacity * 32
        for via, inspector in inspectors.items():
            reads = []
            for _ in range(5):
                with inspector.reading_memory() as prog:
                    t = time.perf_counter()
                    raw = prog.read(stats.buffer, size)
                    reads.append(time.perf_counter() - t)
            assert len(raw) == size
            ends = []
            for _ in range(3):
                t = time.perf_counter()
                frame, how = collect(exp, target, out, stats=stats)
                ends.append(time.perf_counter() - t)
            figures[via] = {"read_s": min(reads), "end_s": min(ends), "how": how, "rows": len(frame)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nr", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=1_000_000)
    args = parser.parse_args()
    with LabTarget() as target, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        target.run("true")
        inspectors = {via: HostInspector.for_lab(target, via=via) for via in ("qmp", "ram")}
        assert inspectors["ram"].via == "ram", "the lab's RAM was not mapped"
        snaps = {via: snapshot_figures(inspector) for via, inspector in inspectors.items()}
        snap = snaps["ram"]["snap"]
        print(f"accelerator: {target.accel.upper()} ({target.release}); {len(snap.workqueues)} workqueues, "
              f"{len(snap.pools)} pools, {len(snap.workers)} workers", flush=True)
        for key, label, unit in (("first_s", "first snapshot (attach + debug info + snapshot)", "s"),
                                 ("best_ms", "one snapshot, best", "ms"), ("median_ms", "one snapshot, median", "ms"),
                                 ("pause_ms", "consistent snapshot, guest paused (median)", "ms")):
            qmp, ram = snaps["qmp"][key], snaps["ram"][key]
            print(f"{label:48}: qmp {qmp:8.3f} {unit}, ram {ram:8.3f} {unit}, ratio ram/qmp {ram / qmp:.3f}"
                  + (" (target ram <= 1 ms)" if key == "median_ms" else ""), flush=True)
        for busy in (False, True):
            load = "insert_exec bursts" if busy else "idle guest"
            for via, inspector in inspectors.items():
                info = sampler_figures(target, inspector, SAMPLER_HZ[via], args.seconds, busy, out)
                print(f"StateSampler {via} at {SAMPLER_HZ[via]} Hz, {load}, "
                      f"{info['seconds']:g} s: {info['samples']} samples, {info['achieved_hz']} Hz, "
                      f"{info['missed_periods']} missed and {info['torn_periods']} torn periods, lateness median "
                      f"{info['lateness_median_ms']} ms, sampler {info['sampler_sched']}"
                      + (" (target: 0 missed at 1 kHz)" if via == "ram" else ""), flush=True)
            floor = sampler_figures(target, inspectors["ram"], SAMPLER_HZ["ram"], args.seconds, busy, out, ScheduleOnly)
            print(f"the same schedule, no read (this machine's floor), {load}, "
                  f"{floor['seconds']:g} s: {floor['missed_periods']} missed periods", flush=True)
        reads = sample_read_figures(target, inspectors, args.samples, out)
        for via, fig in reads.items():
            print(f"{fig['rows']:,} samples out of guest memory, {via}: read {args.samples / fig['read_s'] / 1e6:,.1f}M "
                  f"samples/s ({fig['read_s'] * 1e3:.1f} ms); read + parse + Parquet "
                  f"{args.samples / fig['end_s'] / 1e6:,.1f}M samples/s ({fig['end_s'] * 1e3:.1f} ms, via {fig['how']})"
                  + (" (target read >= 100M/s)" if via == "ram" else ""))
        print(f"ratio ram/qmp: read {reads['qmp']['read_s'] / reads['ram']['read_s']:.1f}x faster, end to end "
              f"{reads['qmp']['end_s'] / reads['ram']['end_s']:.1f}x faster", flush=True)
        guest = LabInspector(target)
        guest.snapshot()    # load the debug info in the guest first
        print("guest CPU per snapshot: in-guest server "
              f"{guest_cpu_per_snapshot(target, guest.snapshot):.2f} ms, "
              + ", ".join(f"{via} {guest_cpu_per_snapshot(target, i.snapshot):.2f} ms" for via, i in inspectors.items()))
        samplers = [("none", None), *((f"{via} at 10 Hz", i.snapshot) for via, i in inspectors.items()),
                    ("in guest at 10 Hz", guest.snapshot)]
        for name, sampler in samplers:
            medians = [insert_exec_median(target, out, args.nr, sampler) for _ in range(args.runs)]
            print(f"insert_exec median with {name:18}: " + ", ".join(analysis.format_duration(m) for m in medians)
                  + f" (spread {analysis.format_duration(max(medians) - min(medians))})", flush=True)


if __name__ == "__main__":
    main()
