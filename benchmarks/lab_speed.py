"""Benchmark: how soon the lab answers, and a notebook run with its boot.

Run by hand on an idle machine (it boots the lab many times):
    .venv/bin/python benchmarks/lab_speed.py [--boots 10] [--baseline-boots 3] [--notebooks 3]

Prints, for ``--boots`` boots of the stock kernel: boot to first answer
(``LabSession.boot_seconds``: from the start of virtme-run's preparation to
the guest agent's first answer), median and max, and the guest's timeline
from its console timestamps (kernel → initramfs → wqkit's init → agent);
then the wall time of the whole ``wqkit lab run -- true``, ``--commands`` times. The
baseline boots the same kernel with virtme-ng's own init (udev included), as
the lab did before, timed the same way. Then the wall time of
``papermill notebooks/insert_exec.ipynb OUT -p nr 1000`` (boot included), and
of the same with a kept lab up (``wqkit lab up``: the notebook attaches to it,
no boot). Under TCG these are emulation timings of this machine.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wqkit.lab import LabSession, kept
from wqkit.lab.agent_bundle import guest_command
from wqkit.lab.vm import AGENT_PREFIX
from wqkit.paths import SOURCE_DIR

#: Console lines that mark the guest's boot phases, in order: with wqkit's init, and with
#: virtme-ng-init (the baseline).
BOOT = {"kernel": "Run /init as init process", "initramfs": "virtme initramfs: done; switching to real root"}
MARKS = {**BOOT, "init started": "wqkit-init: kernel file systems mounted",
         "agent started": "wqkit-init: script started", "init set-up done": "wqkit-init: set-up done"}
BASELINE_MARKS = {**BOOT, "init basic set-up": "virtme-ng-init: basic initialization done",
                  "udev settled": "virtme-ng-init: udev is done", "script started": "virtme-ng-init: starting script"}


#: How the last boot entered the kernel (wqkit.lab.firmware), for the summary.
BOOT_PATH = [""]


def quiet(message: str) -> None:
    pass


def timeline(console: str, marks: dict[str, str]) -> dict[str, float]:
    """Seconds since the guest kernel started at which each mark was logged."""
    seen = {}
    for name, text in marks.items():
        match = re.search(r"\[\s*(\d+\.\d+)\] .*" + re.escape(text), console)
        if match:
            seen[name] = float(match.group(1))
    return seen


def boot_wqkit() -> tuple[float, dict[str, float], str]:
    """One lab boot: seconds to the first answer, the guest's timeline (agent included), the accelerator."""
    with LabSession(progress=quiet) as lab:
        marks = timeline(lab.console(), MARKS)
        marks["agent answers"] = lab.guest_uptime_at_hello
        BOOT_PATH[0] = lab.boot_path
        return lab.boot_seconds, marks, lab.accel


def boot_baseline(accel: str) -> tuple[float, dict[str, float]]:
    """One boot with virtme-ng's own init (udev included): virtme-run runs the agent as its script."""
    session = LabSession(accel=accel, progress=quiet)
    cmd = session._virtme_run_command(accel, guest_command())
    start = time.monotonic()
    with open(session.console_log, "wb") as console:
        # TMPDIR: virtme-run's exit-code file goes into the session, not /tmp (it is killed, no clean-up).
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=console, text=True,
                                cwd="/", start_new_session=True, env=dict(os.environ, TMPDIR=str(session.workdir)))
    try:
        for line in proc.stdout:
            if line.startswith(AGENT_PREFIX):
                seconds = time.monotonic() - start
                marks = timeline(session.console(), BASELINE_MARKS)
                marks["agent answers"] = json.loads(line[len(AGENT_PREFIX):])["uptime"]
                return seconds, marks
        raise RuntimeError("the baseline guest never answered")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        session.close()


def papermill_seconds(out: Path) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "papermill", str(SOURCE_DIR / "notebooks" / "insert_exec.ipynb"),
                    str(out), "-p", "nr", "1000"], check=True, capture_output=True, cwd=SOURCE_DIR)
    return time.monotonic() - start


def lab_run_seconds() -> float:
    """Wall time of the whole command a user types, ``wqkit lab run -- true`` (boot, the command,
    power-off and the CLI's own start and end)."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "wqkit.cli", "lab", "run", "--", "true"], check=True, capture_output=True,
                   cwd=SOURCE_DIR)
    return time.monotonic() - start


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} s, max {max(values):.1f} s (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=10)
    parser.add_argument("--commands", type=int, default=10, help="runs of `wqkit lab run -- true`")
    parser.add_argument("--baseline-boots", type=int, default=3)
    parser.add_argument("--notebooks", type=int, default=3)
    parser.add_argument("--warm", type=int, default=3, help="papermill runs with a kept lab up")
    args = parser.parse_args()
    boots, marks = [], []
    for i in range(args.boots):
        seconds, seen, accel = boot_wqkit()
        if i == 0:
            print(f"accelerator: {accel.upper()}" + (" (emulation timings)" if accel == "tcg" else ""), flush=True)
        boots.append(seconds)
        marks.append(seen)
        print(f"boot {i + 1}/{args.boots}: {seconds:.1f} s  " + json.dumps({k: round(v, 2) for k, v in seen.items()}),
              flush=True)
    commands = []
    for i in range(args.commands):
        commands.append(lab_run_seconds())
        print(f"wqkit lab run -- true {i + 1}/{args.commands}: {commands[-1]:.1f} s", flush=True)
    baseline, baseline_marks = [], []
    for i in range(args.baseline_boots):
        seconds, seen = boot_baseline(accel)
        baseline.append(seconds)
        baseline_marks.append(seen)
        print(f"baseline boot {i + 1}/{args.baseline_boots} (virtme-ng-init, udev): {seconds:.1f} s  "
              + json.dumps({k: round(v, 2) for k, v in seen.items()}), flush=True)
    notebooks = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.notebooks):
            notebooks.append(papermill_seconds(Path(tmp) / f"out{i}.ipynb"))
            print(f"papermill insert_exec nr=1000 {i + 1}/{args.notebooks}: {notebooks[-1]:.1f} s", flush=True)
        warm = []
        if args.warm:
            kept.up(progress=quiet)
            try:
                for i in range(args.warm):
                    warm.append(papermill_seconds(Path(tmp) / f"warm{i}.ipynb"))
                    print(f"papermill insert_exec nr=1000, kept lab up, {i + 1}/{args.warm}: {warm[-1]:.1f} s",
                          flush=True)
            finally:
                kept.down()

    print(f"\n== boot to first answer, wqkit's init: {summary(boots)} (target <= 5 s); boot path {BOOT_PATH[0]}")
    if commands:
        print(f"== the whole `wqkit lab run -- true`: {summary(commands)} (target <= 6 s)")
    if baseline:
        print(f"== boot to first answer, virtme-ng-init with udev (baseline): {summary(baseline)}; "
              f"ratio of medians {statistics.median(boots) / statistics.median(baseline):.2f}")
    for label, seen, names in (("wqkit's init", marks, MARKS), ("baseline", baseline_marks, BASELINE_MARKS)):
        if seen:
            print(f"== guest timeline, {label}, median s since the kernel started: " + ", ".join(
                f"{name} {statistics.median(m[name] for m in seen if name in m):.2f}"
                for name in [*names, "agent answers"] if any(name in m for m in seen)))
    if notebooks:
        print(f"== papermill insert_exec nr=1000, boot included: {summary(notebooks)} (target <= 25 s)")
    if warm:
        print(f"== papermill insert_exec nr=1000, kept lab up: {summary(warm)} (target <= 5 s)")


if __name__ == "__main__":
    main()
