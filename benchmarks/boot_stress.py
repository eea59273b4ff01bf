"""Benchmark: how often a lab boot crashes, per TCG threading mode.

Run by hand (it boots the lab many times):
    .venv/bin/python benchmarks/boot_stress.py [--boots 30] [--modes multi,single] [--busy 2]

Multi-threaded TCG sometimes oopses at boot with ``int3`` in sched_clock_cpu
right after "sched_clock: Marking stable": the kernel patches a static key
with int3 while the other vCPU runs a stale translation of that code.
Single-threaded TCG runs the vCPUs in turn, which removes the race at its
root. Each boot here has retries off, so every crash is counted; ``--busy N``
keeps N CPU hogs running beside the VM (the crashes were seen on a busy
machine). Prints, per mode: boots, crashes with their first console line,
the crash rate and the median time to the first command.
"""

import argparse
import statistics
import subprocess
import sys
import time

from wqkit.errors import LabCrash, LabError
from wqkit.lab import LabSession


def boot_once(mode: str) -> tuple[float | None, str | None]:
    """(seconds to the first command, None) or (None, the crash line)."""
    session = LabSession(tcg_threads=mode, accel="tcg", boot_retries=0, progress=lambda m: None)
    start = time.monotonic()
    try:
        session.start()
        session.run("true", check=True)
        return time.monotonic() - start, None
    except LabCrash as exc:
        return None, str(exc).split(" (console:")[0]
    except LabError as exc:
        return None, f"not a crash: {exc}"
    finally:
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=30, help="boots per mode (default 30)")
    parser.add_argument("--modes", default="multi,single", help="TCG threading modes to compare")
    parser.add_argument("--busy", type=int, default=0, metavar="N", help="CPU hogs beside the VM")
    args = parser.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for mode in args.modes.split(","):
            times, crashes = [], []
            for i in range(args.boots):
                seconds, crash = boot_once(mode)
                if crash:
                    crashes.append(crash)
                else:
                    times.append(seconds)
                print(f"{mode} boot {i + 1}/{args.boots}: "
                      f"{'CRASH ' + crash if crash else f'{seconds:.1f} s'}", flush=True)
            median = f"{statistics.median(times):.1f} s" if times else "n/a"
            print(f"== TCG {mode}-threaded, {args.busy} CPU hogs beside: {len(crashes)}/{args.boots} boots crashed "
                  f"({len(crashes) / args.boots:.0%}); median time to first command {median}", flush=True)
            for crash in crashes:
                print(f"   {crash}")
    finally:
        for hog in hogs:
            hog.kill()


if __name__ == "__main__":
    main()
