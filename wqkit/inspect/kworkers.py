"""The target's kworkers by name, and which workers and pools a run created.

A kworker's name says its pool: ``kworker/CPU:ID`` (``H``: highpri) for a
CPU's pool, ``kworker/uPOOL:ID`` for an unbound pool, followed by ``-WQ``, the
workqueue it last ran, in ``/proc/PID/comm``. Two listings, before a module
loads and before it unloads, tell which kworkers a run created and which
unbound pools appeared (an affinity scope's pods, or a new ``max_active``, make
new pools): read from ``/proc``, so on any kernel and under TCG alike. A pool
created and destroyed between the two listings is not seen.
"""

from __future__ import annotations

import re
from typing import Mapping

from wqkit.target import Target

NAME = re.compile(r"^kworker/(?:(?P<cpu>\d+)|u(?P<pool>\d+)):\d+(?P<highpri>H?)")


def kworkers(target: Target) -> dict[int, str]:
    """Every kworker task of the target: pid → comm, in two of the agent's requests (a shell loop
    started a ``cat`` per task: 5-18 s under TCG, twice a run)."""
    pids = [name for name in target.list_dir("/proc") if name.isdigit()]
    # A task that exits between the listing and the read has no comm left: skipped.
    comms = target.read_present([f"/proc/{pid}/comm" for pid in pids])
    return {int(pid): comm.strip() for pid, comm in zip(pids, comms)
            if comm is not None and comm.startswith("kworker/")}


def pool_of(comm: str) -> str | None:
    """The pool a kworker's name says: ``cpu0``, ``cpu0H`` or ``unbound8`` (None for another name)."""
    match = NAME.match(comm)
    if match is None:
        return None
    if match["pool"] is not None:
        return f"unbound{match['pool']}"
    return f"cpu{match['cpu']}{match['highpri']}"


def census(before: Mapping[int, str], after: Mapping[int, str]) -> dict:
    """What changed between two :func:`kworkers` listings: kworkers created and gone, per pool,
    and the unbound pools whose first kworker appeared."""
    created = {pid: comm for pid, comm in after.items() if pid not in before}
    pools_before = {pool_of(comm) for comm in before.values()}
    per_pool: dict[str, int] = {}
    for comm in created.values():
        pool = pool_of(comm) or "other"
        per_pool[pool] = per_pool.get(pool, 0) + 1
    new_pools = sorted({pool_of(comm) for comm in after.values()} - pools_before - {None},
                       key=lambda name: (len(name), name))
    return {"before": len(before), "after": len(after), "created": len(created),
            "gone": len(set(before) - set(after)), "created_per_pool": dict(sorted(per_pool.items())),
            "pools_created": new_pools}
