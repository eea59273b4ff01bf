"""The counters a state timeline samples, and nothing else: a read cheap enough for 1 kHz.

A full :func:`~wqkit.inspect.snapshot.read_snapshot` decodes every worker,
pending item, attribute and cpumask (0.7 ms from the lab's mapped RAM); a
timeline row needs, per pool, its workers, idle and running workers and the
length of its worklist, and per workqueue its active items and started and
completed counts. :func:`read_counters` walks the same lists the same way
(torn lists raise ListChanged, see wqkit.inspect.snapshot.retried) and reads
only those fields, from the layouts the snapshot already took from debug info.
A workqueue's name is decoded once per raw name.
"""

from __future__ import annotations

from typing import NamedTuple

from drgn import Program

from wqkit.inspect.layout import StructLayout, cstr
from wqkit.inspect.model import PWQ_STATS
from wqkit.inspect.snapshot import _entries, _kernel, _pool_addresses


class PoolCounters(NamedTuple):
    id: int
    workers: int
    idle: int
    running: int
    pending: int


class WorkqueueCounters(NamedTuple):
    name: str
    nr_active: int
    started: int | None
    completed: int | None


class _Layouts:
    """The few fields :func:`read_counters` reads, laid out once per program."""

    def __init__(self, prog: Program) -> None:
        kernel = _kernel(prog)
        self.kernel = kernel
        self.pool = StructLayout(prog, "struct worker_pool", {
            "id": "id", "nr_running": "nr_running", "worklist": "worklist.next", "nr_workers": "nr_workers",
            "nr_idle": "nr_idle"})
        self.wq = StructLayout(prog, "struct workqueue_struct", {"next": "list.next", "pwqs": "pwqs.next",
                                                                  "name": "name"})
        self.pwq = StructLayout(prog, "struct pool_workqueue", {
            "next": "pwqs_node.next", "pool": "pool", "nr_active": "nr_active", "stats": "stats"})
        # Indexes of the two counters in pwq->stats; None on kernels without pwq stats (before 6.3).
        self.started = kernel.stat_index[PWQ_STATS.index("started")]
        self.completed = kernel.stat_index[PWQ_STATS.index("completed")]
        #: Workqueue names by their raw bytes, decoded once.
        self.names: dict[bytes, str] = {}


def _layouts(prog: Program) -> _Layouts:
    if "wqkit.inspect.counters" not in prog.cache:
        prog.cache["wqkit.inspect.counters"] = _Layouts(prog)
    return prog.cache["wqkit.inspect.counters"]


def read_counters(prog: Program) -> tuple[list[PoolCounters], list[WorkqueueCounters]]:
    """Every pool's and workqueue's counters, one pass, not retried (see snapshot.retried)."""
    lay = _layouts(prog)
    kernel = lay.kernel
    pools = []
    for address in _pool_addresses(kernel):
        pool = lay.pool.read(address)
        head = address + kernel.pool_worklist
        pending = 0 if pool["worklist"] == head else len(_entries(kernel.work, head, pool["worklist"], "entry"))
        pools.append(PoolCounters(pool["id"], pool["nr_workers"], pool["nr_idle"], pool["nr_running"], pending))
    workqueues = []
    first = int.from_bytes(prog.read(kernel.workqueues, 8), "little")
    names, started_at, completed_at = lay.names, lay.started, lay.completed
    for wq in _entries(lay.wq, kernel.workqueues, first, "list"):
        raw_name = wq["name"]
        name = names.get(raw_name)
        if name is None:
            name = names[raw_name] = cstr(raw_name)
        nr_active, started, completed = 0, 0, 0
        pwqs = _entries(lay.pwq, wq["address"] + kernel.wq_pwqs, wq["pwqs"], "pwqs_node")
        for pwq in pwqs:
            nr_active += pwq["nr_active"]
            if started_at is not None:
                started += pwq["stats"][started_at]
                completed += pwq["stats"][completed_at]
        stats = started_at is not None and bool(pwqs)      # as WorkqueueInfo.stats has them
        workqueues.append(WorkqueueCounters(name, nr_active, started if stats else None, completed if stats else None))
    return pools, workqueues
