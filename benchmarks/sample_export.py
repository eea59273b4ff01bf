"""Benchmark: sample export from the kernel to Parquet, and the timestamp overhead.

Run by hand (it boots the lab):  .venv/bin/python benchmarks/sample_export.py [--nr 1000000]

Prints, for one insert_exec run of NR items in the lab:
- export throughput, end to end (debugfs -> host file -> parsed -> Parquet),
  next to its baseline, the raw debugfs read inside the guest (cat > /dev/null),
  which no export can beat; the ratio is end-to-end / raw;
- the calibrated cost of the rdtsc_ordered() pair, in cycles (median, min).
The accelerator is printed with the figures: TCG numbers are emulation numbers.
"""

import argparse
import tempfile
import time
from pathlib import Path

from wqkit import kmod
from wqkit.experiments import experiment
from wqkit.run import collect, follow
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
            raw = target.run(f"time -p cat {exp.debugfs_dir}/samples > /dev/null", check=True)
            raw_s = float(raw.stderr.split("real")[1].split()[0])
            start = time.perf_counter()
            frame = collect(exp, target, Path(tmp))
            export_s = time.perf_counter() - start
        with kmod.loaded(target, exp.module, {"nr": 100_000, "calibrate": 1}, progress=lambda m: None):
            follow(exp, target, 100_000, timeout=600)
            calibration = collect(exp, target, Path(tmp), name="calibration")
        print(f"accelerator: {target.accel.upper()} ({target.release})")
        print(f"samples: {len(frame)} of {args.nr}")
        print(f"baseline raw debugfs read in the guest: {raw_s:.3f} s, {args.nr / raw_s:,.0f} samples/s")
        print(f"end-to-end export to Parquet:          {export_s:.3f} s, {args.nr / export_s:,.0f} samples/s")
        print(f"ratio end-to-end / raw throughput: {raw_s / export_s:.2f}")
        print(f"timestamp pair overhead: median {calibration['cycles'].median():.0f} cycles, "
              f"min {calibration['cycles'].min()} cycles ({len(calibration)} pairs)")


if __name__ == "__main__":
    main()
