"""Plain, typed records of the kernel's workqueue state, and their DataFrames.

A :class:`Snapshot` holds no drgn objects: it can be serialised to JSON (the
lab guest sends it to the host that way) and compared across time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pandas is imported only when a DataFrame is asked for (slow under TCG)
    import pandas as pd

class PwqStats(NamedTuple):
    """A pool_workqueue's ``stats[]``, read by the names of ``enum pool_workqueue_stats``
    (PWQ_STAT_STARTED is ``started``); None for a stat this kernel lacks."""

    started: int | None
    completed: int | None
    cpu_time: int | None        # microseconds
    cpu_intensive: int | None
    cm_wakeup: int | None
    repatriated: int | None
    mayday: int | None
    rescued: int | None


PWQ_STATS = PwqStats._fields


@dataclass
class PwqInfo:
    """One pool_workqueue: the link between a workqueue and a worker pool."""

    pool_id: int
    nr_active: int
    stats: PwqStats | None  # None on kernels without pwq->stats (before 6.3)
    #: Stats of this kernel that wqkit does not know, under their kernel names.
    extra_stats: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkqueueInfo:
    """One workqueue_struct."""

    name: str
    flags: int
    flag_names: list[str]
    type: str                        # percpu, unbound, ordered or bh
    max_active: int
    min_active: int | None           # None before Linux 6.9
    node_nr_active: list[dict] | None  # unbound, 6.9+: [{"node", "nr", "max"}]
    rescuer_pid: int | None
    pwqs: list[PwqInfo] = field(default_factory=list)
    #: An unbound workqueue's affinity scope (its attrs' affn_scope: ``default`` or a scope's
    #: name) and whether it is strict; None for the others, or before Linux 6.6.
    affinity_scope: str | None = None
    affinity_strict: bool | None = None

    # The workqueue's totals are derived from its pwqs, not stored twice.
    @property
    def nr_active(self) -> int:
        """Active work items, summed over the pwqs."""
        return sum(p.nr_active for p in self.pwqs)

    @property
    def stats(self) -> PwqStats | None:
        """The pwq stats summed over the pwqs (None on kernels without them)."""
        if not self.pwqs or self.pwqs[0].stats is None:
            return None
        return PwqStats._make(None if None in column else sum(column)
                              for column in zip(*(p.stats for p in self.pwqs)))

    @property
    def started(self) -> int | None:
        stats = self.stats
        return None if stats is None else stats.started

    @property
    def completed(self) -> int | None:
        stats = self.stats
        return None if stats is None else stats.completed

    @property
    def nr_active_nodes(self) -> int:
        """nr_active as the per-node accounting sees it (0 for non-unbound)."""
        return sum(n["nr"] for n in self.node_nr_active or [])


@dataclass
class PoolInfo:
    """One worker_pool."""

    id: int
    cpu: int                 # -1 for unbound pools
    node: int
    nice: int
    flags: int
    flag_names: list[str]
    refcnt: int
    nr_workers: int
    nr_idle: int
    nr_running: int
    nr_pending: int
    cpumask: str             # hex, as in /sys/devices/virtual/workqueue/cpumask
    #: With pending work: jiffies since the worklist last made progress (pool->watchdog_ts,
    #: what the kernel's stall watchdog checks): how long the oldest item has waited at most.
    #: None when the worklist is empty or the kernel lacks the field.
    worklist_age_jiffies: int | None = None

    @property
    def bound(self) -> bool:
        return self.cpu >= 0

    @property
    def active(self) -> bool:
        """Busy workers, running workers or pending work."""
        return self.nr_workers > self.nr_idle or self.nr_running > 0 or self.nr_pending > 0


@dataclass
class PendingWork:
    """A work item waiting: on its pool's worklist, or on its pwq's inactive list (max_active)."""

    pool_id: int
    workqueue: str | None     # None when the item's pwq is not found (it moved under the read)
    function: str             # its work function's symbol
    inactive: bool            # held back by max_active
    address: int


@dataclass
class WorkerInfo:
    """One kworker (or rescuer) attached to a pool."""

    pid: int | None           # None for a BH pool's worker (softirq context, no task)
    id: int
    pool_id: int
    cpu: int                  # the pool's CPU, -1 for unbound pools
    comm: str
    desc: str                 # the workqueue whose item it last ran (or work_set_desc())
    current_func: str | None  # symbol of the running work function; None when idle
    last_active: int          # jiffies
    flags: int
    flag_names: list[str]

    @property
    def running(self) -> bool:
        return self.current_func is not None


@dataclass
class AffinityScope:
    """One affinity scope of unbound workqueues (the kernel's ``wq_pod_types[]``): how it groups
    the CPUs into pods, as ``tools/workqueue/wq_dump.py`` prints it."""

    name: str                   # cpu, smt, cache, cache_shard (7.1+), numa, system
    default: bool               # the kernel's wq_affn_dfl
    pod_cpus: list[list[int]]   # the CPUs of each pod
    pod_node: list[int]         # each pod's NUMA node (for memory)
    cpu_pod: list[int]          # each possible CPU's pod


@dataclass
class Snapshot:
    """All workqueues, pools and workers at one moment."""

    time: float                # seconds (time.time()) when taken
    kernel_release: str
    workqueues: list[WorkqueueInfo]
    pools: list[PoolInfo]
    workers: list[WorkerInfo]
    missing_fields: list[str] = field(default_factory=list)  # fields this kernel lacks
    #: A consistent read from the host: how long the guest's vCPUs were stopped for it.
    paused_seconds: float | None = None
    #: Every waiting work item, pool by pool.
    pending: list[PendingWork] = field(default_factory=list)
    jiffies: int | None = None           # the guest's jiffies when taken
    #: The affinity scopes of unbound workqueues (empty before Linux 6.6).
    scopes: list[AffinityScope] = field(default_factory=list)

    def workqueue(self, name: str, occurrence: int = 0) -> WorkqueueInfo | None:
        """The workqueue called ``name`` (names are not unique: ``occurrence`` picks the n-th)."""
        matches = [wq for wq in self.workqueues if wq.name == name]
        return matches[occurrence] if occurrence < len(matches) else None

    def occurrence(self, wq: WorkqueueInfo) -> int:
        """How many workqueues of the same name come before ``wq`` in the kernel's list."""
        return [w.name for w in self.workqueues[: self.workqueues.index(wq)]].count(wq.name)

    def pool(self, pool_id: int) -> PoolInfo:
        return next(p for p in self.pools if p.id == pool_id)

    def df_workqueues(self) -> pd.DataFrame:
        import pandas as pd
        rows = []
        for wq in self.workqueues:
            row = {k: v for k, v in asdict(wq).items() if k not in ("pwqs", "node_nr_active")}
            row["flag_names"] = ",".join(wq.flag_names)
            row["nr_active"] = wq.nr_active
            row["nr_pwqs"] = len(wq.pwqs)
            row.update(zip(PWQ_STATS, wq.stats or [None] * len(PWQ_STATS)))
            rows.append(row)
        return pd.DataFrame(rows).set_index("name")

    def df_pools(self) -> pd.DataFrame:
        import pandas as pd
        frame = pd.DataFrame([{**asdict(p), "flag_names": ",".join(p.flag_names)} for p in self.pools])
        return frame.set_index("id")

    def df_workers(self) -> pd.DataFrame:
        import pandas as pd
        frame = pd.DataFrame([{**asdict(w), "flag_names": ",".join(w.flag_names), "running": w.running}
                              for w in self.workers])
        frame["pid"] = frame["pid"].astype("Int64")
        return frame

    def df_pending(self) -> pd.DataFrame:
        """One row per waiting work item: pool, workqueue, function, inactive (max_active) or not."""
        import pandas as pd
        return pd.DataFrame([asdict(w) for w in self.pending],
                            columns=["pool_id", "workqueue", "function", "inactive", "address"])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Snapshot:
        return cls(
            time=data["time"], kernel_release=data["kernel_release"],
            workqueues=[WorkqueueInfo(**{**wq, "pwqs": [_pwq_from_dict(p) for p in wq["pwqs"]]})
                        for wq in data["workqueues"]],
            pools=[PoolInfo(**p) for p in data["pools"]],
            workers=[WorkerInfo(**w) for w in data["workers"]],
            missing_fields=data.get("missing_fields", []),
            paused_seconds=data.get("paused_seconds"),
            pending=[PendingWork(**w) for w in data.get("pending", [])],
            jiffies=data.get("jiffies"),
            scopes=[AffinityScope(**s) for s in data.get("scopes", [])],
        )


def _pwq_from_dict(data: dict) -> PwqInfo:
    stats = data["stats"]
    return PwqInfo(data["pool_id"], data["nr_active"], None if stats is None else PwqStats._make(stats),
                   data.get("extra_stats", {}))
