"""Benchmark: a consistent QMP snapshot of a guest with tens of thousands of pending work items.

Run by hand (it boots the lab):
    .venv/bin/python benchmarks/flood_snapshot.py [--items 100000] [--pending 20000] [--pairs 4]

wq_fixture (max_active 3) is given --items work items on each of its three
workqueues, so that most wait on their inactive lists; once --pending items
are pending, --pairs pairs of consistent snapshots are taken, each pair one
as wqkit takes it (each work function's name looked up once per read) and
one as the baseline did (looked up for every pending item: a module
function's lookup walks the module tree). Prints the guest's pause per
snapshot, the cost per pending item, and the ratio baseline / now.
"""

import argparse
import statistics
import time

from wqkit.experiments import kmod
from wqkit.inspect import snapshot as snapshot_module
from wqkit.inspect.lab import HostInspector
from wqkit.target import LabTarget


def consistent_read(qmp: HostInspector) -> tuple[float, int]:
    """One consistent snapshot: the guest's pause (s) and the number of pending items read."""
    snap = qmp.snapshot(consistent=True)
    return snap.paused_seconds, len(snap.pending)


def baseline(qmp: HostInspector) -> tuple[float, int]:
    """The same snapshot with a lookup for every pending item (as before the per-read names)."""
    cached = snapshot_module._symbol
    snapshot_module._symbol = snapshot_module._function_name
    try:
        return consistent_read(qmp)
    finally:
        snapshot_module._symbol = cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100000, help="per workqueue, at most 100000")
    parser.add_argument("--pending", type=int, default=20000)
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()
    with LabTarget() as target:
        qmp = HostInspector.for_lab(target)
        qmp.snapshot()
        with kmod.loaded(target, "wq_fixture", {"max_active": 3}):
            target.run(f"(echo {args.items} > /sys/module/wq_fixture/parameters/run) >/dev/null 2>&1 &", check=True)
            deadline = time.monotonic() + 120
            while len(qmp.snapshot(consistent=True).pending) < args.pending:
                if time.monotonic() > deadline:
                    raise SystemExit(f"fewer than {args.pending} items ever pending: give more --items")
                time.sleep(0.1)
            rows = {"now": [], "baseline": []}
            for _ in range(args.pairs):
                for name, take in (("now", consistent_read), ("baseline", baseline)):
                    paused, pending = take(qmp)
                    rows[name].append((paused, pending))
                    print(f"{name:8}: {pending:6} pending items, guest paused {paused:.3f} s "
                          f"({paused / max(pending, 1) * 1e6:.1f} µs per item)")
            target.run(f"while [ $(cat /sys/module/wq_fixture/parameters/run) -lt {args.items} ]; do sleep 0.5; done",
                       check=True, timeout=1800)
    per_item = {name: statistics.median(p / max(n, 1) for p, n in values) for name, values in rows.items()}
    print(f"accelerator: {target.accel.upper()}; median per pending item: now {per_item['now'] * 1e6:.1f} µs, "
          f"baseline {per_item['baseline'] * 1e6:.1f} µs; ratio baseline/now {per_item['baseline'] / per_item['now']:.1f}")


if __name__ == "__main__":
    main()
