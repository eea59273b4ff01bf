"""Where a measurement came from: kernel, accelerator, CPU, wqkit itself."""

from __future__ import annotations

import subprocess

from wqkit import __version__
from wqkit.paths import SOURCE_DIR
from wqkit.target import LabTarget, Target


def wqkit_revision() -> str:
    """``git describe`` of the wqkit tree (``-dirty`` when it has changes), or ``unknown``."""
    try:
        return subprocess.run(["git", "-C", str(SOURCE_DIR), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def target_provenance(target: Target) -> dict:
    """Kernel, accelerator and CPU facts of a target, read from the target itself."""
    facts = target.run("uname -r; nproc; grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-",
                       check=True).stdout.splitlines()
    info = {
        "target": target.name,
        "kernel_release": facts[0].strip(),
        "patched": False,
        "accel": target.accel,
        "cpus": int(facts[1]),
        "cpu_model": facts[2].strip() if len(facts) > 2 else "unknown",
    }
    if isinstance(target, LabTarget):
        session = target.session
        info["patched"] = target.kernel.patched
        info["lab"] = {"kernel": target.kernel.label, "cpus": session.cpus, "memory": session.memory,
                       "boot_seconds": round(session.boot_seconds, 2), "console_log": str(session.console_log)}
    if info["accel"] == "tcg":
        info["timing_note"] = "TCG: emulation timings, not hardware timings"
    return info


def wqkit_provenance() -> dict:
    return {"version": __version__, "revision": wqkit_revision()}
