"""Where a measurement came from: kernel, accelerator, CPU, wqkit itself."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

from wqkit import __version__
from wqkit.errors import WqkitError
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
    """Kernel, accelerator, CPU, CPU topology and clock facts of a target, read from the target's
    own files and kernel log (two requests, no process started: a quarter of a second each under TCG)."""
    cpus = target.session.cpus if isinstance(target, LabTarget) else os.cpu_count() or 1
    files = [OSRELEASE, *CLOCK_FILES]
    texts = target.read_present(files + topology_files(cpus))
    absent = [path for path, text in zip(files, texts) if text is None]
    if absent:
        raise WqkitError(f"could not read {', '.join(absent)} on the {target.name} target")
    release, cpuinfo, clocksource, cmdline = texts[:len(files)]
    models = re.findall(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    info = {
        "target": target.name,
        "kernel_release": release.strip(),
        "patched": False,
        "accel": target.accel,
        "cpus": len(re.findall(r"^processor\s*:", cpuinfo, re.M)),
        "cpu_model": models[0].strip() if models else "unknown",
        "cpu_topology": cpu_topology(cpus, texts[len(files):]),
    }
    if isinstance(target, LabTarget):
        session = target.session
        info["patched"] = target.kernel.patched
        info["kernel_variant"] = target.kernel.variant
        info["lab"] = {"kernel": target.kernel.label, "cpus": session.cpus, "memory": session.memory,
                       "topology": session.topology.text if session.topology else None,
                       "boot_seconds": round(session.boot_seconds, 2), "session": session.workdir.name,
                       "tcg_threads": session.tcg_threads if info["accel"] == "tcg" else None,
                       "failed_boots": session.failed_boots, "boot_id": session.boot_id,
                       "kept": session.kept}
    info["clock"] = clock_facts(cpuinfo, clocksource, target.kernel_log()[0], cmdline)
    notes = []
    if info["accel"] == "tcg":
        notes.append("TCG: emulation timings, not hardware timings")
    if isinstance(target, LabTarget) and target.kernel.sanitized:
        notes.append(f"{target.kernel.variant} kernel: sanitizers slow every access; not the kernel's timings")
    if notes:
        info["timing_note"] = "; ".join(notes)
    return info


#: What a CPU's topology is read from (sysfs), per CPU: the groups affinity scopes are made of.
CPU_TOPOLOGY_FILES = {"package": "topology/physical_package_id", "core": "topology/core_id",
                      "smt": "topology/thread_siblings_list", "l3": "cache/index3/shared_cpu_list",
                      "l2": "cache/index2/shared_cpu_list"}


def topology_files(cpus: int) -> list[str]:
    """The sysfs files :func:`cpu_topology` reads, for CPUs 0..cpus-1 (NUMA nodes are at most as many)."""
    return [f"/sys/devices/system/cpu/cpu{cpu}/{name}" for cpu in range(cpus) for name in CPU_TOPOLOGY_FILES.values()] \
        + [f"/sys/devices/system/node/node{node}/cpulist" for node in range(cpus)]


def cpu_list_numbers(text: str) -> list[int]:
    """``"0-3,8"`` (a kernel cpulist) to [0, 1, 2, 3, 8]."""
    numbers: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        numbers += range(int(low), int(high or low) + 1)
    return numbers


def cpu_topology(cpus: int, texts: list[str | None]) -> dict[str, list]:
    """Each CPU's package, core, SMT siblings, last-level cache (L3, else L2) and NUMA node from
    the texts of :func:`topology_files` (None: absent): where the guest's sysfs puts it, the groups
    the affinity scopes cpu, smt, cache and numa pod by, for each online CPU."""
    per_cpu = len(CPU_TOPOLOGY_FILES)
    node_of = {cpu: node for node, text in enumerate(texts[cpus * per_cpu:]) if text
               for cpu in cpu_list_numbers(text)}
    out: dict[str, list] = {"cpu": [], "package": [], "core": [], "smt": [], "cache": [], "node": []}
    for cpu in range(cpus):
        facts = dict(zip(CPU_TOPOLOGY_FILES, texts[cpu * per_cpu:(cpu + 1) * per_cpu]))
        if facts["package"] is None:
            continue                # offline
        out["cpu"].append(cpu)
        out["package"].append(int(facts["package"]))
        out["core"].append(int(facts["core"] or 0))
        out["smt"].append((facts["smt"] or str(cpu)).strip())
        out["cache"].append((facts["l3"] or facts["l2"] or str(cpu)).strip())
        out["node"].append(node_of.get(cpu, 0))
    return out


#: The kernel's release, and the files that say what makes TSC deltas comparable across CPUs
#: and over time (CPU flags, the kernel's clocksource, its command line).
OSRELEASE = "/proc/sys/kernel/osrelease"
CLOCK_FILES = ("/proc/cpuinfo", "/sys/devices/system/clocksource/clocksource0/current_clocksource", "/proc/cmdline")
TSC_FLAGS = ("constant_tsc", "nonstop_tsc", "tsc_reliable", "tsc_known_freq")
#: What the kernel logs about the TSC's stability (its last such lines are recorded); not the
#: echo of its command line, which may hold ``tsc=reliable``.
TSC_MESSAGE = re.compile(r"^\[[^]]*\] (?!(kernel )?command line:).*tsc.*(unstable|reliable|synchroniz)", re.I)


def clock_provenance(target: Target) -> dict:
    """The TSC's CPU flags, the kernel's clocksource, and what the kernel said of the TSC."""
    cpuinfo, clocksource, cmdline = target.read_files(CLOCK_FILES)
    return clock_facts(cpuinfo, clocksource, target.kernel_log()[0], cmdline)


def clock_facts(cpuinfo: str, clocksource: str, kernel_log: list[str], cmdline: str) -> dict:
    """:func:`clock_provenance` from the files it reads and the kernel log."""
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.M)
    kernel_said = [line for line in kernel_log if TSC_MESSAGE.search(line)][-3:]
    present = set(flags.group(1).split()) if flags else set()
    facts: dict = {flag: flag in present for flag in TSC_FLAGS}
    facts["clocksource"] = clocksource.strip() or "unknown"
    notes = [line.split("] ", 1)[-1].strip() for line in kernel_said]
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
