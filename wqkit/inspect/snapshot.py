"""Taking a :class:`~wqkit.inspect.model.Snapshot` of a kernel with drgn.

The layout of every structure is read from the attached kernel's debug info.
A field that does not exist on that kernel (e.g. ``min_active`` before 6.9,
pwq stats before 6.3) becomes None and is listed in
``Snapshot.missing_fields`` instead of failing.

The hot loops (workqueues, pool_workqueues, workers) read each structure once
and decode it with :mod:`wqkit.inspect.layout`; the few pools go through
ordinary drgn Objects.
"""

from __future__ import annotations

import struct
import time
from typing import Iterator

from drgn import Object, Program, offsetof
from drgn.helpers.linux.cpumask import for_each_cpu

from wqkit.inspect.helpers import constant, decode_flags, for_each_pool, pool_nr_pending
from wqkit.inspect.layout import StructLayout, cstr
from wqkit.inspect.model import PWQ_STATS, PoolInfo, PwqInfo, Snapshot, WorkerInfo, WorkqueueInfo


class _Kernel:
    """What snapshots need to know about one kernel, looked up once per program
    (type and offset lookups are cheap on the host, not under TCG)."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.wq_unbound = prog["WQ_UNBOUND"].value_()
        self.wq_bh = constant(prog, "WQ_BH", 0) or 0
        self.wq_ordered = constant(prog, "__WQ_ORDERED", 0) or 0
        self.nr_node_ids = prog["nr_node_ids"].value_()
        self.release = prog["init_uts_ns"].name.release.string_().decode()
        self.workqueues = prog["workqueues"].address_
        self.wq = StructLayout(prog, "struct workqueue_struct", {
            "next": "list.next", "pwqs": "pwqs.next", "name": "name", "flags": "flags",
            "max_active": "max_active", "min_active": "min_active", "rescuer": "rescuer"})
        self.pwq = StructLayout(prog, "struct pool_workqueue", {
            "next": "pwqs_node.next", "pool": "pool", "nr_active": "nr_active", "stats": "stats"})
        self.worker = StructLayout(prog, "struct worker", {
            "next": "node.next", "current_work": "current_work", "current_func": "current_func",
            "task": "task", "last_active": "last_active", "flags": "flags", "id": "id", "desc": "desc"})
        self.task = StructLayout(prog, "struct task_struct", {"pid": "pid", "comm": "comm"})
        self.pool = StructLayout(prog, "struct worker_pool", {
            "id": "id", "cpu": "cpu", "node": "node", "flags": "flags", "nr_running": "nr_running",
            "worklist": "worklist.next", "nr_workers": "nr_workers", "nr_idle": "nr_idle",
            "workers": "workers.next", "attrs": "attrs", "refcnt": "refcnt"})
        self.has_node_nr_active = self.wq.type.has_member("node_nr_active")
        if self.has_node_nr_active:
            self.nna = StructLayout(prog, "struct wq_node_nr_active", {"max": "max", "nr": "nr"})
            self.nna_array = offsetof(self.wq.type, "node_nr_active")
        self.missing = sorted(self.wq.missing + self.pwq.missing + self.worker.missing + self.pool.missing)
        self._flag_names: dict[tuple[str, int], list[str]] = {}

    def flags(self, value: int, enum_name: str, prefix: str) -> list[str]:
        key = (enum_name, value)
        if key not in self._flag_names:
            self._flag_names[key] = decode_flags(self.prog, value, enum_name, prefix)
        return self._flag_names[key]

    def workqueue_type(self, flags: int) -> str:
        if flags & self.wq_bh:
            return "bh"
        if flags & self.wq_unbound:
            return "ordered" if flags & self.wq_ordered else "unbound"
        return "percpu"


def _kernel(prog: Program) -> _Kernel:
    """The program's _Kernel, kept in drgn's per-program cache."""
    if "wqkit.inspect" not in prog.cache:
        prog.cache["wqkit.inspect"] = _Kernel(prog)
    return prog.cache["wqkit.inspect"]


def _entries(layout: StructLayout, head: int, first: int, node: str) -> Iterator[tuple[int, dict]]:
    """(address, fields) of each entry of a list, one read per entry."""
    node_offset = layout.offset(node)
    position = first
    while position != head:
        address = position - node_offset
        fields = layout.read(address)
        yield address, fields
        position = fields["next"]


def take_snapshot(prog: Program) -> Snapshot:
    """Every workqueue, pool and worker of the kernel ``prog`` is attached to."""
    kernel = _kernel(prog)
    pool_ids: dict[int, int] = {}   # pool address -> id, for the pwqs
    pools, workers = [], []
    for ptr in for_each_pool(prog):
        address = ptr.value_()
        pool, first_worker = _pool(kernel, address)
        pool_ids[address] = pool.id
        pools.append(pool)
        head = address + kernel.pool.offset("workers")
        workers += [_worker(kernel, fields, pool) for _, fields in _entries(kernel.worker, head, first_worker, "node")]
    first = int.from_bytes(prog.read(kernel.workqueues, 8), "little")   # workqueues.next
    workqueues = [_workqueue(kernel, address, fields, pool_ids) for address, fields in
                  _entries(kernel.wq, kernel.workqueues, first, "list")]
    return Snapshot(time=time.time(), kernel_release=kernel.release, workqueues=workqueues, pools=pools,
                    workers=workers, missing_fields=kernel.missing)


def _workqueue(kernel: _Kernel, address: int, wq: dict, pool_ids: dict[int, int]) -> WorkqueueInfo:
    flags = wq["flags"]
    raw_pwqs = [fields for _, fields in
                _entries(kernel.pwq, address + kernel.wq.offset("pwqs"), wq["pwqs"], "pwqs_node")]
    pwqs = [_pwq(kernel, fields, pool_ids) for fields in raw_pwqs]
    stats = None
    if raw_pwqs and all(f["stats"] is not None for f in raw_pwqs):
        stats = dict(zip(PWQ_STATS, map(sum, zip(*(f["stats"] for f in raw_pwqs)))))
    node_nr_active = None
    if flags & kernel.wq_unbound and kernel.has_node_nr_active:
        node_nr_active = []
        # One pointer per node, the last one serving NUMA_NO_NODE.
        raw = kernel.prog.read(address + kernel.nna_array, 8 * (kernel.nr_node_ids + 1))
        for node, nna in enumerate(struct.unpack(f"<{kernel.nr_node_ids + 1}Q", raw)):
            if nna:
                fields = kernel.nna.read(nna)
                node_nr_active.append({"node": node if node < kernel.nr_node_ids else -1,
                                       "nr": fields["nr"], "max": fields["max"]})
    rescuer_pid = None
    if wq["rescuer"]:   # WQ_MEM_RECLAIM workqueues have a rescuer worker of their own
        rescuer_pid = kernel.task.read(kernel.worker.read(wq["rescuer"])["task"])["pid"]
    return WorkqueueInfo(
        name=cstr(wq["name"]), flags=flags, flag_names=kernel.flags(flags, "wq_flags", "WQ_"),
        type=kernel.workqueue_type(flags), max_active=wq["max_active"], min_active=wq["min_active"],
        nr_active=sum(p.nr_active for p in pwqs), node_nr_active=node_nr_active, stats=stats,
        rescuer_pid=rescuer_pid, pwqs=pwqs)


def _pwq(kernel: _Kernel, pwq: dict, pool_ids: dict[int, int]) -> PwqInfo:
    stats = None if pwq["stats"] is None else dict(zip(PWQ_STATS, pwq["stats"]))
    pool_id = pool_ids.get(pwq["pool"])
    if pool_id is None:   # a pool created since the pools were read
        pool_id = Object(kernel.prog, "struct worker_pool *", pwq["pool"]).id.value_()
    return PwqInfo(pool_id=pool_id, nr_active=pwq["nr_active"], stats=stats)


def _pool(kernel: _Kernel, address: int) -> tuple[PoolInfo, int]:
    """A pool, and the first entry of its workers list."""
    pool = kernel.pool.read(address)
    attrs = Object(kernel.prog, "struct workqueue_attrs *", pool["attrs"])
    bits = sum(1 << cpu for cpu in for_each_cpu(attrs.cpumask))
    worklist = address + kernel.pool.offset("worklist")
    pending = 0 if pool["worklist"] == worklist else pool_nr_pending(
        Object(kernel.prog, "struct worker_pool *", address))
    flags = pool["flags"]
    info = PoolInfo(
        id=pool["id"], cpu=pool["cpu"], node=pool["node"], nice=attrs.nice.value_(),
        flags=flags, flag_names=kernel.flags(flags, "worker_pool_flags", "POOL_"),
        refcnt=pool["refcnt"], nr_workers=pool["nr_workers"], nr_idle=pool["nr_idle"],
        nr_running=pool["nr_running"], nr_pending=pending, cpumask=f"{bits:08x}")
    return info, pool["workers"]


def _worker(kernel: _Kernel, worker: dict, pool: PoolInfo) -> WorkerInfo:
    current = None
    if worker["current_work"]:
        try:
            current = kernel.prog.symbol(worker["current_func"]).name
        except LookupError:
            current = hex(worker["current_func"])
    # A BH pool's worker runs in softirq context: it has no task.
    task = kernel.task.read(worker["task"]) if worker["task"] else {"pid": None, "comm": b"[bh]"}
    pid, comm = task["pid"], cstr(task["comm"])
    flags = worker["flags"]
    return WorkerInfo(
        pid=pid, id=worker["id"], pool_id=pool.id, cpu=pool.cpu, comm=comm, desc=cstr(worker["desc"]),
        current_func=current, last_active=worker["last_active"], flags=flags,
        flag_names=kernel.flags(flags, "worker_flags", "WORKER_"))
