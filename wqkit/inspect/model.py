"""Plain, typed records of the kernel's workqueue state, and their DataFrames.

A :class:`Snapshot` holds no drgn objects: it can be serialised to JSON (the
lab guest sends it to the host that way) and compared across time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported only when a DataFrame is asked for (slow under TCG)
    import pandas as pd

#: pool_workqueue stats (enum pool_workqueue_stats), in kernel order.
PWQ_STATS = ("started", "completed", "cpu_time", "cpu_intensive", "cm_wakeup", "repatriated", "mayday",
             "rescued")


@dataclass
class PwqInfo:
    """One pool_workqueue: the link between a workqueue and a worker pool."""

    pool_id: int
    nr_active: int
    stats: dict[str, int] | None  # None on kernels without pwq->stats


@dataclass
class WorkqueueInfo:
    """One workqueue_struct."""

    name: str
    flags: int
    flag_names: list[str]
    type: str                        # percpu, unbound, ordered or bh
    max_active: int
    min_active: int | None           # None before Linux 6.9
    nr_active: int                   # summed over pwqs
    node_nr_active: list[dict] | None  # unbound, 6.9+: [{"node", "nr", "max"}]
    stats: dict[str, int] | None     # pwq stats summed
    rescuer_pid: int | None
    pwqs: list[PwqInfo] = field(default_factory=list)

    @property
    def started(self) -> int | None:
        return None if self.stats is None else self.stats["started"]

    @property
    def completed(self) -> int | None:
        return None if self.stats is None else self.stats["completed"]

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

    @property
    def bound(self) -> bool:
        return self.cpu >= 0

    @property
    def active(self) -> bool:
        """Busy workers, running workers or pending work."""
        return self.nr_workers > self.nr_idle or self.nr_running > 0 or self.nr_pending > 0


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
class Snapshot:
    """All workqueues, pools and workers at one moment."""

    time: float                # seconds (time.time()) when taken
    kernel_release: str
    workqueues: list[WorkqueueInfo]
    pools: list[PoolInfo]
    workers: list[WorkerInfo]
    missing_fields: list[str] = field(default_factory=list)  # fields this kernel lacks

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
            row = {k: v for k, v in asdict(wq).items() if k not in ("pwqs", "stats", "node_nr_active")}
            row["flag_names"] = ",".join(wq.flag_names)
            row["nr_pwqs"] = len(wq.pwqs)
            row.update({s: (wq.stats or {}).get(s) for s in PWQ_STATS})
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Snapshot:
        return cls(
            time=data["time"], kernel_release=data["kernel_release"],
            workqueues=[WorkqueueInfo(**{**wq, "pwqs": [PwqInfo(**p) for p in wq["pwqs"]]})
                        for wq in data["workqueues"]],
            pools=[PoolInfo(**p) for p in data["pools"]],
            workers=[WorkerInfo(**w) for w in data["workers"]],
            missing_fields=data.get("missing_fields", []),
        )
