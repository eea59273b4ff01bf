"""Benchmark: one full workqueue snapshot in the lab, next to a plain walk.

Run by hand (it boots the lab):  .venv/bin/python benchmarks/monitor_snapshot.py [--repeat 5]

In one lab session, with drgn inside the guest: the debug-info load time,
the time of one full snapshot (all workqueues, pwqs, pools and workers,
decoded into records), and the baseline: walking the workqueue list and
summing every pwq's stats. Both are timed inside the guest (the best of
--repeat). Target: snapshot / walk <= 1.5. Also the vmcore path: dumping the
guest's memory and taking the snapshot on the host.
"""

import argparse
import tempfile
import time
from pathlib import Path

from wqkit.inspect.lab import LabInspector, vmcore_snapshot
from wqkit.target import LabTarget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with LabTarget() as target:
        inspector = LabInspector(target)
        first = inspector.request("snapshot")
        snapshot_s = min(inspector.request("snapshot")["seconds"] for _ in range(args.repeat))
        walk_s = min(inspector.request("walk")["seconds"] for _ in range(args.repeat))
        with tempfile.TemporaryDirectory(dir=target.session.workdir) as tmp:
            start = time.perf_counter()
            snap = vmcore_snapshot(target, Path(tmp) / "vmcore")
            vmcore_s = time.perf_counter() - start
        print(f"accelerator: {target.accel.upper()} ({target.release}); {len(first['workqueues'])} workqueues, "
              f"{len(first['pools'])} pools, {len(first['workers'])} workers")
        print(f"debug info load in the guest: {first['load_seconds']:.1f} s")
        print(f"full snapshot in the guest:   {snapshot_s * 1000:.1f} ms (best of {args.repeat})")
        print(f"plain walk + pwq stats sum:   {walk_s * 1000:.1f} ms (baseline, best of {args.repeat})")
        print(f"ratio snapshot / walk: {snapshot_s / walk_s:.2f} (target <= 1.5)")
        print(f"vmcore path (dump + host drgn load + snapshot): {vmcore_s:.1f} s, {len(snap.workqueues)} workqueues")


if __name__ == "__main__":
    main()
