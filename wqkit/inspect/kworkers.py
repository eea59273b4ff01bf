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
    """Every kworker task of the target: pid → comm."""
    # A task may exit between the glob and its comm being read: skip it (it was no kworker
    # of interest, or it is gone), rather than end the loop with cat's failure.
    out = target.run("for d in /proc/[0-9]*; do c=$(cat $d/comm 2>/dev/null) || continue; "
                     "case $c in kworker/*) echo \"${d#/proc/} $c\";; esac; done; true", check=True).stdout
    return {int(pid): comm for pid, _, comm in (line.partition(" ") for line in out.splitlines() if line)}


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
