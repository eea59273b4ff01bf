"""Taking a :class:`~wqkit.inspect.model.Snapshot` of a kernel with drgn.

Fields are read by name from the attached kernel's debug info. A field that
does not exist on that kernel (e.g. ``min_active`` before 6.9, pwq stats
before 6.3) becomes None and is listed in ``Snapshot.missing_fields``
instead of failing.

Each kernel structure is read from memory once (``read_()``) and its fields
are then taken from that copy: on a live kernel every separate read is a
trip through /proc/kcore, and they dominate the cost of a snapshot.
"""

from __future__ import annotations

import time

from drgn import Object, Program, offsetof
from drgn.helpers.linux.cpumask import for_each_cpu
from drgn.helpers.linux.list import list_count_nodes

from wqkit.inspect.helpers import constant, decode_flags, for_each_pool, list_for_each_entry_read
from wqkit.inspect.model import PWQ_STATS, PoolInfo, PwqInfo, Snapshot, WorkerInfo, WorkqueueInfo


class _Kernel:
    """What snapshots need to know about one kernel, looked up once per program.

    Type, constant and offset lookups cost little on the host but a lot
    under TCG, so they are cached for the life of the program.
    """

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.wq_unbound = prog["WQ_UNBOUND"].value_()
        self.wq_bh = constant(prog, "WQ_BH", 0) or 0
        self.wq_ordered = constant(prog, "__WQ_ORDERED", 0) or 0
        self.nr_node_ids = prog["nr_node_ids"].value_()
        self.types = {name: prog.type(f"struct {name}") for name in
                      ("workqueue_struct", "pool_workqueue", "worker_pool", "worker")}
        self.offsets = {("workqueue_struct", "pwqs"): offsetof(self.types["workqueue_struct"], "pwqs"),
                        ("worker_pool", "workers"): offsetof(self.types["worker_pool"], "workers")}
        self.missing: set[str] = set()   # fields this kernel lacks, found while reading
        self._flag_names: dict[tuple[str, int], list[str]] = {}

    def flags(self, value: int, enum_name: str, prefix: str) -> list[str]:
        key = (enum_name, value)
        if key not in self._flag_names:
            self._flag_names[key] = decode_flags(self.prog, value, enum_name, prefix)
        return self._flag_names[key]

    def member(self, obj: Object, name: str) -> Object | None:
        try:
            return obj.member_(name)
        except LookupError:
            self.missing.add(f"{obj.type_.type_name().rstrip(' *')}.{name}")
            return None

    def entries(self, type_name: str, head_address: int, first: int, member: str):
        return list_for_each_entry_read(self.prog, self.types[type_name], head_address, first, member)

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


def take_snapshot(prog: Program) -> Snapshot:
    """Every workqueue, pool and worker of the kernel ``prog`` is attached to."""
    kernel = _kernel(prog)
    pool_ids: dict[int, int] = {}   # pool address -> id, for the pwqs
    pools, workers = [], []
    for ptr in for_each_pool(prog):
        pool_value = ptr[0].read_()
        pool = _pool(kernel, ptr, pool_value)
        pool_ids[ptr.value_()] = pool.id
        pools.append(pool)
        workers += [_worker(kernel, value, pool) for _, value in kernel.entries(
            "worker", ptr.value_() + kernel.offsets["worker_pool", "workers"], pool_value.workers.next.value_(),
            "node")]
    head = prog["workqueues"]
    workqueues = [_workqueue(kernel, ptr, value, pool_ids) for ptr, value in kernel.entries(
        "workqueue_struct", head.address_, head.next.value_(), "list")]
    release = prog["init_uts_ns"].name.release.string_().decode()
    return Snapshot(time=time.time(), kernel_release=release, workqueues=workqueues, pools=pools,
                    workers=workers, missing_fields=sorted(kernel.missing))


def _cstr(array: Object) -> str:
    """A NUL-terminated char array as text, from one copy of its bytes."""
    return array.to_bytes_().split(b"\0", 1)[0].decode(errors="replace")


def workqueue_type(prog: Program, flags: int) -> str:
    """percpu, unbound, ordered or bh, from a workqueue's flags."""
    return _kernel(prog).workqueue_type(flags)


def _workqueue(kernel: _Kernel, ptr: Object, wq: Object, pool_ids: dict[int, int]) -> WorkqueueInfo:
    flags = wq.flags.value_()
    pwqs = [_pwq(kernel, value, pool_ids) for _, value in kernel.entries(
        "pool_workqueue", ptr.value_() + kernel.offsets["workqueue_struct", "pwqs"], wq.pwqs.next.value_(),
        "pwqs_node")]
    stats = None
    if pwqs and all(p.stats is not None for p in pwqs):
        stats = dict(zip(PWQ_STATS, map(sum, zip(*(p.stats.values() for p in pwqs)))))
    node_nr_active = None
    if flags & kernel.wq_unbound and kernel.member(wq, "node_nr_active") is not None:
        node_nr_active = []
        for node in range(kernel.nr_node_ids + 1):   # the last entry serves NUMA_NO_NODE
            nna = ptr.node_nr_active[node]
            if nna:
                nna = nna[0].read_()
                node_nr_active.append({"node": node if node < kernel.nr_node_ids else -1,
                                       "nr": nna.nr.counter.value_(), "max": nna.max.value_()})
    min_active = kernel.member(wq, "min_active")
    rescuer = wq.rescuer
    return WorkqueueInfo(
        name=_cstr(wq.name), flags=flags,
        flag_names=kernel.flags(flags, "wq_flags", "WQ_"), type=kernel.workqueue_type(flags),
        max_active=wq.max_active.value_(), min_active=None if min_active is None else min_active.value_(),
        nr_active=sum(p.nr_active for p in pwqs), node_nr_active=node_nr_active, stats=stats,
        rescuer_pid=rescuer.task.pid.value_() if rescuer else None, pwqs=pwqs)


def _pwq(kernel: _Kernel, pwq: Object, pool_ids: dict[int, int]) -> PwqInfo:
    raw = kernel.member(pwq, "stats")
    stats = None if raw is None else dict(zip(PWQ_STATS, raw.value_()))
    pool_id = pool_ids.get(pwq.pool.value_())
    if pool_id is None:   # a pool created since the pools were read
        pool_id = pwq.pool.id.value_()
    return PwqInfo(pool_id=pool_id, nr_active=pwq.nr_active.value_(), stats=stats)


def _pool(kernel: _Kernel, ptr: Object, pool: Object) -> PoolInfo:
    attrs = pool.attrs[0].read_()
    bits = sum(1 << cpu for cpu in for_each_cpu(attrs.cpumask))
    worklist = ptr.worklist.address_of_()
    pending = 0 if pool.worklist.next.value_() == worklist.value_() else list_count_nodes(worklist)
    flags = pool.flags.value_()
    return PoolInfo(
        id=pool.id.value_(), cpu=pool.cpu.value_(), node=pool.node.value_(), nice=attrs.nice.value_(),
        flags=flags, flag_names=kernel.flags(flags, "worker_pool_flags", "POOL_"),
        refcnt=pool.refcnt.value_(), nr_workers=pool.nr_workers.value_(), nr_idle=pool.nr_idle.value_(),
        nr_running=pool.nr_running.value_(), nr_pending=pending, cpumask=f"{bits:08x}")


def _worker(kernel: _Kernel, worker: Object, pool: PoolInfo) -> WorkerInfo:
    current = None
    if worker.current_work:
        func = worker.current_func.value_()
        try:
            current = kernel.prog.symbol(func).name
        except LookupError:
            current = hex(func)
    flags = worker.flags.value_()
    task = worker.task
    # A BH pool's worker runs in softirq context: it has no task.
    return WorkerInfo(
        pid=task.pid.value_() if task else None, id=worker.id.value_(), pool_id=pool.id, cpu=pool.cpu,
        comm=_cstr(task.comm) if task else "[bh]", desc=_cstr(worker.desc), current_func=current,
        last_active=worker.last_active.value_(), flags=flags,
        flag_names=kernel.flags(flags, "worker_flags", "WORKER_"))
