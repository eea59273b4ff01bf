"""The lab smoke run: boot, load a module, look at workqueues with drgn.

It is what ``make demo`` runs until the experiments land, and what a
newcomer's first contact with the lab shows: which kernel booted, under which
accelerator, that a module's work items ran, and how many workqueues exist.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from wqkit.experiments import kmod
from wqkit.runs.spec import module_spec
from wqkit.inspect.lab import HostInspector
from wqkit.target import LabTarget


@dataclass
class SmokeReport:
    """What the smoke run saw."""

    release: str
    accel: str
    cpus: int
    boot_seconds: float
    work_items_queued: int
    work_items_executed: int
    workqueues: list[str]

    def summary(self) -> str:
        return (f"guest kernel {self.release} under {self.accel.upper()} ({self.cpus} CPUs), "
                f"booted in {self.boot_seconds:.1f} s\n"
                f"wq_smoke: {self.work_items_executed}/{self.work_items_queued} work items executed\n"
                f"{len(self.workqueues)} workqueues (drgn): {', '.join(self.workqueues[:8])}, ...")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def run_smoke(target: LabTarget, nr: int | None = None, progress=print) -> SmokeReport:
    """Run the smoke sequence on a lab target (booting it if needed); ``nr`` work items
    (None: wq_smoke's declared default)."""
    if nr is None:
        nr = int(module_spec("wq_smoke").param("nr").default)
    with kmod.loaded(target, "wq_smoke", {"nr": nr}, progress=progress) as module:
        executed = _executed_count(module.dmesg())
    progress("listing workqueues with drgn on the host, reading the guest's RAM")
    snapshot = HostInspector.for_lab(target).snapshot()
    return SmokeReport(
        release=target.session.guest_release,
        accel=target.accel,
        cpus=target.session.cpus,
        boot_seconds=round(target.session.boot_seconds, 2),
        work_items_queued=nr,
        work_items_executed=executed,
        workqueues=[wq.name for wq in snapshot.workqueues],
    )


def _executed_count(log: list[str]) -> int:
    """``executed=N`` from wq_smoke's report line (0 if absent)."""
    for line in reversed(log):
        if "wq_smoke: nr=" in line and "executed=" in line:
            return int(line.rsplit("executed=", 1)[1])
    return 0
