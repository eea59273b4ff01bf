"""Benchmark: sample export from the kernel to Parquet, and the timestamp overhead.

Run by hand (it boots the lab):  .venv/bin/python benchmarks/sample_export.py [--nr 1000000]

Prints, for one insert_exec run of NR items in the lab:
- export throughput, end to end, both ways: read from outside the guest, out
  of its RAM mapped on the host (guest memory -> parsed -> Parquet; the
  default in the lab, target >= 5M samples/s; benchmarks/host_inspection.py
  compares it with QMP) and through debugfs (debugfs -> 9p -> host file -> parsed
  -> Parquet), next to the raw debugfs read inside the guest
  (cat > /dev/null); ratios are end-to-end / raw;
- the calibrated cost of the rdtsc_ordered() pair, in cycles (median, min).
The accelerator is printed with the figures: TCG numbers are emulation numbers.
"""

import argparse
import tempfile
import time
from pathlib import Path

from wqkit.experiments import kmod
from wqkit.runs.spec import experiment
from wqkit.inspect.lab import HostInspector
from wqkit.experiments.runner import collect, follow
from wqkit.experiments.samples import RecorderStats
from wqkit.target import LabTarget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nr", type=int, default=1_000_000)
    args = parser.parse_args()
    exp = experiment("insert_exec")
    with LabTarget() as target, tempfile.TemporaryDirectory() as tmp:
        target.run("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
        with kmod.loaded(target, exp.module, {"nr": args.nr}, progress=lambda m: None):
            follow(exp, target, args.nr, timeout=3600)
            stats = RecorderStats.parse(target.run(f"cat {exp.debugfs_dir}/stats", check=True).stdout)
            HostInspector.for_lab(target).prog      # attach and load debug info once, as a session does
            start = time.perf_counter()
            frame, via = collect(exp, target, Path(tmp), stats=stats)
            ram_s = time.perf_counter() - start
            assert via == "ram" and len(frame) == args.nr
            raw = target.run(f"time -p cat {exp.debugfs_dir}/samples > /dev/null", check=True)
            raw_s = float(raw.stderr.split("real")[1].split()[0])
            start = time.perf_counter()
            frame, via = collect(exp, target, Path(tmp))
            export_s = time.perf_counter() - start
        with kmod.loaded(target, exp.module, {"nr": 100_000, "calibrate": 1}, progress=lambda m: None):
            follow(exp, target, 100_000, timeout=600)
            calibration, _ = collect(exp, target, Path(tmp), name="calibration")
        print(f"accelerator: {target.accel.upper()} ({target.release})")
        print(f"samples: {len(frame)} of {args.nr}")
        print(f"baseline raw debugfs read in the guest: {raw_s:.3f} s, {args.nr / raw_s:,.0f} samples/s")
        print(f"end-to-end from guest RAM to Parquet:  {ram_s:.3f} s, {args.nr / ram_s:,.0f} samples/s "
              f"(target >= 5,000,000; ratio to raw {raw_s / ram_s:.2f})")
        print(f"end-to-end over debugfs to Parquet:    {export_s:.3f} s, {args.nr / export_s:,.0f} samples/s "
              f"(ratio to raw {raw_s / export_s:.2f})")
        print(f"timestamp pair overhead: median {calibration['cycles'].median():.0f} cycles, "
              f"min {calibration['cycles'].min()} cycles ({len(calibration)} pairs)")


if __name__ == "__main__":
    main()
