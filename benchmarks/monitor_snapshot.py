"""Benchmark: one full workqueue snapshot in the lab, next to a plain walk.

Run by hand (it boots the lab):  .venv/bin/python benchmarks/monitor_snapshot.py [--repeat 15]

In one lab session, with drgn inside the guest: the debug-info load time,
the time of one full snapshot (all workqueues, pwqs, pools and workers,
decoded into records), and the baseline: walking the workqueue list with drgn
Objects and summing every pwq's stats. Both are timed inside the guest,
alternately (machine drift hits both alike); best and median of --repeat.
Target: snapshot / walk <= 1.5. Also what a user waits for: one snapshot
request from the host (JSON encoding and transfer included), and the vmcore
path (dump the guest's memory, take the snapshot on the host).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from wqkit.inspect.lab import LabInspector, vmcore_snapshot
from wqkit.target import LabTarget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with LabTarget() as target:
        inspector = LabInspector(target)
        first = inspector.request("snapshot")
        walk_s, snapshot_s, round_trip_s = [], [], []
        for _ in range(args.repeat):
            walk_s.append(inspector.request("walk")["seconds"])
            start = time.perf_counter()
            snapshot_s.append(inspector.request("snapshot")["seconds"])
            round_trip_s.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory(dir=target.session.workdir) as tmp:
            start = time.perf_counter()
            snap = vmcore_snapshot(target, Path(tmp) / "vmcore")
            vmcore_s = time.perf_counter() - start
        print(f"accelerator: {target.accel.upper()} ({target.release}); {len(first['workqueues'])} workqueues, "
              f"{len(first['pools'])} pools, {len(first['workers'])} workers")
        print(f"debug info load in the guest: {first['load_seconds']:.1f} s")
        for name, times in (("full snapshot in the guest", snapshot_s), ("plain walk + pwq stats sum", walk_s)):
            print(f"{name + ':':29} best {min(times) * 1e3:5.1f} ms, median {statistics.median(times) * 1e3:5.1f} ms")
        print(f"ratio snapshot / walk: best {min(snapshot_s) / min(walk_s):.2f}, "
              f"median {statistics.median(snapshot_s) / statistics.median(walk_s):.2f} (target <= 1.5)")
        print(f"one snapshot request from the host: median {statistics.median(round_trip_s) * 1e3:.0f} ms")
        print(f"vmcore path (dump + host drgn load + snapshot): {vmcore_s:.1f} s, {len(snap.workqueues)} workqueues")


if __name__ == "__main__":
    main()
