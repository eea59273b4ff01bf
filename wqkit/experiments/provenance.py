"""Where a measurement came from: kernel, accelerator, CPU, wqkit itself."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

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
    """Kernel, accelerator, CPU and clock facts of a target, read from the target itself (one
    command: each costs a process start, a quarter of a second under TCG)."""
    head, clock_text = target.run("uname -r; nproc; grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-; "
                                  f"echo; {CLOCK_FACTS}", check=True).stdout.split("\n\n", 1)
    facts = head.splitlines()
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
        info["kernel_variant"] = target.kernel.variant
        info["lab"] = {"kernel": target.kernel.label, "cpus": session.cpus, "memory": session.memory,
                       "boot_seconds": round(session.boot_seconds, 2), "session": session.workdir.name,
                       "tcg_threads": session.tcg_threads if info["accel"] == "tcg" else None,
                       "failed_boots": session.failed_boots, "boot_id": session.boot_id,
                       "kept": session.kept}
    info["clock"] = parse_clock_facts(clock_text)
    notes = []
    if info["accel"] == "tcg":
        notes.append("TCG: emulation timings, not hardware timings")
    if isinstance(target, LabTarget) and target.kernel.sanitized:
        notes.append(f"{target.kernel.variant} kernel: sanitizers slow every access; not the kernel's timings")
    if notes:
        info["timing_note"] = "; ".join(notes)
    return info


#: What makes TSC deltas comparable across CPUs and over time (shell, run on the target).
CLOCK_FACTS = ("grep -m1 '^flags' /proc/cpuinfo; "
               "echo; cat /sys/devices/system/clocksource/clocksource0/current_clocksource; "
               "echo; dmesg | grep -iE 'tsc.*(unstable|reliable|synchroniz)' | tail -n 3; "
               "echo; cat /proc/cmdline")
TSC_FLAGS = ("constant_tsc", "nonstop_tsc", "tsc_reliable", "tsc_known_freq")


def clock_provenance(target: Target) -> dict:
    """The TSC's CPU flags, the kernel's clocksource, and what the kernel said of the TSC."""
    return parse_clock_facts(target.run(CLOCK_FACTS, check=True).stdout)


def parse_clock_facts(text: str) -> dict:
    """:func:`clock_provenance` from what CLOCK_FACTS printed."""
    flags, clocksource, kernel_said, cmdline = (text.split("\n\n") + ["", "", ""])[:4]
    present = set(flags.split(":", 1)[-1].split())
    facts: dict = {flag: flag in present for flag in TSC_FLAGS}
    facts["clocksource"] = clocksource.strip() or "unknown"
    notes = [line.split("] ", 1)[-1].strip() for line in kernel_said.splitlines() if line.strip()]
    facts["tsc_unstable"] = any("unstable" in n.lower() for n in notes)
    facts["kernel_messages"] = notes
    facts["tsc_options"] = [arg for arg in cmdline.split() if arg.startswith(("tsc=", "clocksource="))]
    facts["comparable"] = (facts["constant_tsc"] and facts["nonstop_tsc"] and not facts["tsc_unstable"]
                           and facts["clocksource"] == "tsc")
    return facts


def check_clock_held(target: Target, clock: dict) -> None:
    """Read the clock facts again after a measurement, and record in ``clock`` (a run's
    ``meta["clock"]``) a clocksource that changed or a TSC marked unstable meanwhile: the
    run's TSC deltas and the kernel's ns then no longer share a clock."""
    now = clock_provenance(target)
    if (now["clocksource"], now["tsc_unstable"]) != (clock["clocksource"], clock["tsc_unstable"]):
        clock["changed_during_run"] = {key: now[key] for key in ("clocksource", "tsc_unstable", "kernel_messages")}
        clock["comparable"] = False


def host_provenance() -> dict:
    """The host a run was made on and how busy it was: its name, cores, load average and the
    lab VMs (QEMU processes) running on it at the start; ``host_load_end`` adds both at the end."""
    return {"name": socket.gethostname(), "cores": os.cpu_count(), "loadavg_start": list(os.getloadavg()),
            "vms_running_start": _vms_running()}


def host_load_end(host: dict) -> dict:
    return host | {"loadavg_end": list(os.getloadavg()), "vms_running_end": _vms_running()}


def _vms_running() -> int:
    """QEMU processes on this host (any user's: they share its cores)."""
    vms = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            vms += comm.read_text().startswith("qemu-system")
        except OSError:
            continue
    return vms


def wqkit_provenance() -> dict:
    return {"version": __version__, "revision": wqkit_revision()}
