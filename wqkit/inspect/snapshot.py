"""Taking a :class:`~wqkit.inspect.model.Snapshot` of a kernel with drgn.

The layout of every structure is read from the attached kernel's debug info.
A field that does not exist on that kernel (e.g. ``min_active`` before 6.9,
pwq stats before 6.3) becomes None and is listed in
``Snapshot.missing_fields`` instead of failing.

Every structure is read raw, once per span of wanted fields, and decoded with
:mod:`wqkit.inspect.layout`: under TCG, building a drgn Object per member costs
more than the reads. The workqueue totals (nr_active, stats) are not stored but
derived from the pwqs by the model. Result: a full snapshot costs about 1.3x a
plain Object walk of the workqueues summing their pwq stats
(benchmarks/monitor_snapshot.py).
"""

from __future__ import annotations

import struct
import time
from dataclasses import replace
from typing import Callable, Iterator, TypeVar

from drgn import FaultError, Object, Program, TypeKind, offsetof, sizeof
from drgn.helpers.linux.cpumask import for_each_cpu, for_each_possible_cpu

from wqkit.inspect.helpers import (MAX_LIST_ENTRIES, ListChanged, affinity_scope_names, affinity_scopes, constant,
                                   decode_flags, module_symbol)
from wqkit.inspect.layout import StructLayout, cstr
from wqkit.inspect.model import (PWQ_STATS, AffinityScope, PendingWork, PoolInfo, PwqInfo, PwqStats, Snapshot,
                                 WorkerInfo, WorkqueueInfo)


class _Kernel:
    """What snapshots need to know about one kernel, looked up once per program
    (type and offset lookups are cheap on the host, not under TCG)."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.wq_unbound = prog["WQ_UNBOUND"].value_()
        self.wq_bh = constant(prog, "WQ_BH", 0) or 0
        self.wq_ordered = constant(prog, "__WQ_ORDERED", 0) or 0
        # Without CONFIG_NUMA (wqkit's own lab kernels) nr_node_ids is the constant 1, not a variable.
        self.nr_node_ids = constant(prog, "nr_node_ids", 1)
        self.release = prog["init_uts_ns"].name.release.string_().decode()
        self.workqueues = prog["workqueues"].address_
        self.wq = StructLayout(prog, "struct workqueue_struct", {
            "next": "list.next", "pwqs": "pwqs.next", "name": "name", "flags": "flags",
            # Before 6.9 the max_active a workqueue was given is saved_max_active.
            "max_active": ("max_active", "saved_max_active"), "min_active": "min_active", "rescuer": "rescuer",
            # 7.x calls an unbound workqueue's attributes attrs.
            "unbound_attrs": ("unbound_attrs", "attrs")})
        self.wq_pwqs = self.wq.offset("pwqs")
        self.pwq = StructLayout(prog, "struct pool_workqueue", {
            "next": "pwqs_node.next", "pool": "pool", "nr_active": "nr_active", "stats": "stats",
            "inactive": "inactive_works.next"})
        self.pwq_inactive = self.pwq.offset("inactive_works")
        self.work = StructLayout(prog, "struct work_struct", {"data": "data", "next": "entry.next", "func": "func"})
        # A queued work item's data points to its pwq, above the flag bits.
        self.work_pwq_flag = constant(prog, "WORK_STRUCT_PWQ", 0) or 0
        self.work_pwq_mask = ~((1 << (constant(prog, "WORK_STRUCT_PWQ_SHIFT", 8) or 8)) - 1)
        self.jiffies = prog["jiffies"].address_
        self.worker = StructLayout(prog, "struct worker", {
            "next": "node.next", "current_work": "current_work", "current_func": "current_func",
            "task": "task", "last_active": "last_active", "flags": "flags", "id": "id", "desc": "desc"})
        self.task = StructLayout(prog, "struct task_struct", {"pid": "pid", "comm": "comm"})
        self.worker_task = StructLayout(prog, "struct worker", {"task": "task"})
        self.task_pid = StructLayout(prog, "struct task_struct", {"pid": "pid"})
        self.pool = StructLayout(prog, "struct worker_pool", {
            "id": "id", "cpu": "cpu", "node": "node", "flags": "flags", "nr_running": "nr_running",
            "worklist": "worklist.next", "nr_workers": "nr_workers", "nr_idle": "nr_idle",
            "workers": "workers.next", "attrs": "attrs", "refcnt": "refcnt",
            # 7.x calls the pool's last forward progress last_progress_ts.
            "watchdog_ts": ("watchdog_ts", "last_progress_ts")})
        self.pool_worklist = self.pool.offset("worklist")
        # worker_pool_idr's XArray, walked raw (see _pool_addresses).
        self.pool_idr_head = prog["worker_pool_idr"].address_ + offsetof(prog.type("struct idr"), "idr_rt.xa_head")
        self.xa_node = StructLayout(prog, "struct xa_node", {"slots": "slots"})
        # A pool's nice; an unbound workqueue's affinity scope and strictness (6.6+).
        self.attrs = StructLayout(prog, "struct workqueue_attrs",
                                  {"nice": "nice", "affn_scope": "affn_scope", "affn_strict": "affn_strict"})
        self.scope_names = affinity_scope_names(prog)
        # The scopes' pod tables change only with CPU hotplug: read once; which scope is the
        # default (a sysfs write may change it) is read with each snapshot, one enum.
        self.scopes = read_scopes(prog)
        self.affn_dfl = (prog["wq_affn_dfl"].address_, sizeof(prog["wq_affn_dfl"].type_)) if self.scopes else None
        # attrs->cpumask is a cpumask_var_t: a pointer with CONFIG_CPUMASK_OFFSTACK
        # (Debian), else inline. Only the words holding possible CPUs are read.
        nr_cpu_ids = prog["nr_cpu_ids"].value_()
        self.cpumask_offset = offsetof(self.attrs.type, "cpumask")
        self.cpumask_is_pointer = self.attrs.type.member("cpumask").type.unaliased().kind == TypeKind.POINTER
        self.cpumask_size = 8 * ((nr_cpu_ids + 63) // 64)
        self.cpumask_valid = (1 << nr_cpu_ids) - 1
        self.has_node_nr_active = self.wq.type.has_member("node_nr_active")
        if self.has_node_nr_active:
            self.nna = StructLayout(prog, "struct wq_node_nr_active", {"nr": "nr", "max": "max"})
            self.nna_array = offsetof(self.wq.type, "node_nr_active")
            # One pointer per node, then one for NUMA_NO_NODE (shown as node -1).
            self.nna_pointers = struct.Struct(f"<{self.nr_node_ids + 1}Q")
            self.nna_nodes = [*range(self.nr_node_ids), -1]
        has_stats = "pool_workqueue.stats" not in self.pwq.missing
        self.stat_index, self.extra_stats, missing_stats = _stat_indexes(prog) if has_stats else (
            [None] * len(PWQ_STATS), {}, [])
        self.missing = sorted(self.wq.missing + self.pwq.missing + self.worker.missing + self.pool.missing
                              + missing_stats
                              + ([] if self.has_node_nr_active else ["workqueue_struct.node_nr_active"]))
        self._flag_names: dict[tuple[str, int], list[str]] = {}
        #: Module symbol tables read from kernel memory, by (module address, name).
        self.module_symbols: dict = {}
        #: Function names by address, for one read: thousands of pending items share a handful of
        #: functions, and a module function's lookup walks the module tree (~190 µs under TCG).
        #: Emptied before each read, since a module may be unloaded and another loaded in its place.
        self.function_names: dict[int, str] = {}

    def flags(self, value: int, known_flag: str, prefix: str) -> list[str]:
        key = (known_flag, value)
        if key not in self._flag_names:
            self._flag_names[key] = decode_flags(self.prog, value, known_flag, prefix)
        return self._flag_names[key]

    def workqueue_flags(self, flags: int) -> tuple[list[str], str]:
        """A workqueue's flag names and type (percpu, unbound, ordered or bh)."""
        if flags & self.wq_bh:
            wq_type = "bh"
        elif flags & self.wq_unbound:
            wq_type = "ordered" if flags & self.wq_ordered else "unbound"
        else:
            wq_type = "percpu"
        return self.flags(flags, "WQ_UNBOUND", "WQ_"), wq_type

    def cpumask(self, attrs: int) -> int:
        """The CPUs of a ``struct workqueue_attrs`` as a bitmask."""
        cpumask = attrs + self.cpumask_offset
        if self.cpumask_is_pointer:
            cpumask = int.from_bytes(self.prog.read(cpumask, 8), "little")
        return int.from_bytes(self.prog.read(cpumask, self.cpumask_size), "little") & self.cpumask_valid


def _stat_indexes(prog: Program) -> tuple[list[int | None], dict[str, int], list[str]]:
    """Where each pwq stat is in ``pwq->stats[]``, by the names of the kernel's own
    ``enum pool_workqueue_stats`` (their number and order changed between 6.3 and 6.12).

    Returns the index of each PwqStats field (None when this kernel lacks it),
    the stats wqkit does not know (kernel name -> index), and the missing ones.
    """
    enumerators = prog.type("enum pool_workqueue_stats").enumerators or ()
    by_name = {name.removeprefix("PWQ_STAT_").lower(): value for name, value in enumerators
               if name.startswith("PWQ_STAT_")}
    indexes = [by_name.get(field) for field in PWQ_STATS]
    extra = {name: index for name, index in by_name.items() if name not in PWQ_STATS}
    missing = [f"pool_workqueue.stats[PWQ_STAT_{field.upper()}]" for field, i in zip(PWQ_STATS, indexes)
               if i is None]
    return indexes, extra, missing


def _pwq_stats(kernel: _Kernel, raw: tuple | None) -> tuple[PwqStats | None, dict[str, int]]:
    """A pwq's stats by name, and the ones wqkit does not know under their kernel names."""
    if raw is None:
        return None, {}
    stats = PwqStats._make(None if i is None else raw[i] for i in kernel.stat_index)
    return stats, {name: raw[i] for name, i in kernel.extra_stats.items()}


def _kernel(prog: Program) -> _Kernel:
    """The program's _Kernel, kept in drgn's per-program cache."""
    if "wqkit.inspect" not in prog.cache:
        prog.cache["wqkit.inspect"] = _Kernel(prog)
    return prog.cache["wqkit.inspect"]


def _entries(layout: StructLayout, head: int, first: int, node: str) -> list[dict]:
    """The fields of each entry of a kernel list, its ``"address"`` included, one read per entry.

    A list that changes under a live read ends in ListChanged, never in a long walk: an entry
    met twice before the head (list_del_init() makes an entry point to itself) means the list
    changed, so does a walk past MAX_LIST_ENTRIES.
    """
    read, node_offset, entries, position, seen = layout.read, layout.offset(node), [], first, set()
    while position != head:
        if position in seen or len(entries) >= MAX_LIST_ENTRIES:
            raise ListChanged(f"the {layout.type.type_name()} list at {head:#x} changed while being read "
                              f"(entry {position:#x} after {len(entries)} entries)")
        seen.add(position)
        fields = read(position - node_offset)
        fields["address"] = position - node_offset
        entries.append(fields)
        position = fields["next"]
    return entries


class _PoolIds(dict):
    """Pool address -> pool ID, filled from the pools read; a pool created
    since then (a pwq may already point to it) is looked up in the kernel."""

    def __init__(self, prog: Program) -> None:
        super().__init__()
        self.prog = prog

    def __missing__(self, address: int) -> int:
        return Object(self.prog, "struct worker_pool *", address).id.value_()


def _pool_addresses(kernel: _Kernel) -> Iterator[int]:
    """Each pool's address, by ID, as :func:`~wqkit.inspect.helpers.for_each_pool` gives them.

    The IDR's XArray is walked one node at a time (one read of its 64 slots)
    rather than one slot Object at a time: a millisecond less under TCG.
    """
    stack = [int.from_bytes(kernel.prog.read(kernel.pool_idr_head, 8), "little")]
    while stack:
        entry = stack.pop()
        if entry & 3 == 2:    # an internal entry: a node (above 4096) or a sibling/retry/zero marker
            if entry > 4096:
                stack.extend(reversed(kernel.xa_node.read(entry - 2)["slots"]))
        elif entry:
            yield entry


#: A live read that met a list changing under it is taken again after these pauses (seconds).
#: Under TCG a vCPU thread preempted in the middle of list_del() leaves the list torn for as
#: long as it waits for a host CPU (milliseconds): an immediate retry reads the same tear.
RETRY_PAUSES = (0.002, 0.01, 0.05)
SNAPSHOT_ATTEMPTS = len(RETRY_PAUSES) + 1
#: What a read racing a live guest may meet: a list changing under it, a pointer from an entry
#: freed meanwhile that leads to unmapped memory (FaultError), or drgn's address translation of
#: the running guest failing (RecursionError, "page table may be missing"; seen now and then
#: under load even for static kernel addresses such as jiffies).
TORN_READ_ERRORS = (ListChanged, FaultError, RecursionError)

T = TypeVar("T")


def retried(read: Callable[[Program], T], prog: Program) -> T:
    """``read(prog)``, taken again after each RETRY_PAUSES on a torn read, then ListChanged."""
    for pause in RETRY_PAUSES:
        try:
            return read(prog)
        except TORN_READ_ERRORS:
            time.sleep(pause)
    try:
        return read(prog)
    except TORN_READ_ERRORS as exc:
        raise ListChanged(f"no consistent read in {SNAPSHOT_ATTEMPTS} attempts: {exc}") from None


def take_snapshot(prog: Program) -> Snapshot:
    """Every workqueue, pool and worker of the kernel ``prog`` is attached to (see :func:`retried`)."""
    return retried(read_snapshot, prog)


def read_snapshot(prog: Program) -> Snapshot:
    """One pass of :func:`take_snapshot`, not retried: it may raise any of TORN_READ_ERRORS."""
    kernel = _kernel(prog)
    kernel.function_names.clear()
    jiffies = prog.read_u64(kernel.jiffies)
    pool_ids = _PoolIds(prog)
    pools, workers, pending = [], [], []
    for address in _pool_addresses(kernel):
        pool, first_worker, waiting = _pool(kernel, address)
        pool_ids[address] = pool.id
        pools.append(pool)
        pending += [(pool.id, work, False) for work in waiting]
        head = address + kernel.pool.offset("workers")
        workers += [_worker(kernel, fields, pool) for fields in _entries(kernel.worker, head, first_worker, "node")]
    first = int.from_bytes(prog.read(kernel.workqueues, 8), "little")   # workqueues.next
    pwq_names: dict[int, str] = {}
    workqueues = [_workqueue(kernel, fields, pool_ids, pwq_names, pending)
                  for fields in _entries(kernel.wq, kernel.workqueues, first, "list")]
    return Snapshot(time=time.time(), kernel_release=kernel.release, workqueues=workqueues, pools=pools,
                    workers=workers, missing_fields=kernel.missing, jiffies=jiffies, scopes=_scopes(kernel),
                    pending=[_pending(kernel, pool_id, work, inactive, pwq_names)
                             for pool_id, work, inactive in pending])


def _pending(kernel: _Kernel, pool_id: int, work: dict, inactive: bool, pwq_names: dict[int, str]) -> PendingWork:
    data = work["data"] & 0xFFFF_FFFF_FFFF_FFFF      # atomic_long_t: read as signed
    pwq = data & kernel.work_pwq_mask if data & kernel.work_pwq_flag else 0
    return PendingWork(pool_id, pwq_names.get(pwq), _symbol(kernel, work["func"]), inactive, work["address"])


def _symbol(kernel: _Kernel, address: int) -> str:
    """A function's name (see :func:`_function_name`), looked up once per address and read."""
    if address not in kernel.function_names:
        kernel.function_names[address] = _function_name(kernel, address)
    return kernel.function_names[address]


def _function_name(kernel: _Kernel, address: int) -> str:
    """A function's name: from the vmlinux, else from its module's kallsyms, else its address."""
    try:
        return kernel.prog.symbol(address).name
    except LookupError:
        pass
    try:
        return module_symbol(kernel.prog, address, kernel.module_symbols) or hex(address)
    except (LookupError, FaultError, ValueError):
        return hex(address)


def _workqueue(kernel: _Kernel, wq: dict, pool_ids: _PoolIds, pwq_names: dict[int, str],
               pending: list) -> WorkqueueInfo:
    flags, address, name = wq["flags"], wq["address"], cstr(wq["name"])
    pwqs = []
    for pwq in _entries(kernel.pwq, address + kernel.wq_pwqs, wq["pwqs"], "pwqs_node"):
        pool_id = pool_ids[pwq["pool"]]
        pwq_names[pwq["address"]] = name
        pwqs.append(PwqInfo(pool_id, pwq["nr_active"], *_pwq_stats(kernel, pwq["stats"])))
        head = pwq["address"] + kernel.pwq_inactive
        if pwq["inactive"] is not None and pwq["inactive"] != head:
            pending += [(pool_id, work, True) for work in _entries(kernel.work, head, pwq["inactive"], "entry")]
    node_nr_active = None
    if flags & kernel.wq_unbound and kernel.has_node_nr_active:
        # One pointer per node, the last one serving NUMA_NO_NODE.
        nodes = kernel.nna_pointers.unpack(kernel.prog.read(address + kernel.nna_array, kernel.nna_pointers.size))
        node_nr_active = [{"node": node, **kernel.nna.read(nna)} for node, nna in zip(kernel.nna_nodes, nodes) if nna]
    rescuer_pid = None
    if wq["rescuer"]:   # WQ_MEM_RECLAIM workqueues have a rescuer worker of their own
        rescuer_pid = kernel.task_pid.read(kernel.worker_task.read(wq["rescuer"])["task"])["pid"]
    flag_names, wq_type = kernel.workqueue_flags(flags)
    scope = strict = None
    if flags & kernel.wq_unbound and wq["unbound_attrs"] and kernel.scope_names:
        attrs = kernel.attrs.read(wq["unbound_attrs"])
        scope, strict = kernel.scope_names.get(attrs["affn_scope"]), bool(attrs["affn_strict"])
    return WorkqueueInfo(name, flags, flag_names, wq_type, wq["max_active"], wq["min_active"],
                         node_nr_active, rescuer_pid, pwqs, scope, strict)


def read_scopes(prog: Program) -> list[tuple[int, AffinityScope]]:
    """The kernel's affinity scopes (their ``enum wq_affn_scope`` value, and the scope with its
    pods, not marked default), read with drgn: a few hundred small reads."""
    cpus = list(for_each_possible_cpu(prog))
    scopes = []
    for value, name, pods in affinity_scopes(prog):
        count = pods.nr_pods.value_()
        scopes.append((value, AffinityScope(
            name=name, default=False,
            pod_cpus=[list(for_each_cpu(pods.pod_cpus[pod][0])) for pod in range(count)],
            pod_node=[pods.pod_node[pod].value_() for pod in range(count)],
            cpu_pod=[pods.cpu_pod[cpu].value_() for cpu in cpus])))
    return scopes


def _scopes(kernel: _Kernel) -> list[AffinityScope]:
    """The scopes of :func:`read_scopes`, the kernel's default one marked as it is now."""
    if kernel.affn_dfl is None:
        return []
    default = int.from_bytes(kernel.prog.read(*kernel.affn_dfl), "little")
    return [replace(scope, default=value == default) for value, scope in kernel.scopes]


def jiffies_since(now: int, then: int) -> int:
    """Jiffies from ``then`` to ``now`` (both unsigned 64-bit), as the kernel's time_after() sees
    them: a ``then`` after ``now`` (moved on a live guest since ``now`` was read) is 0, not 2^64 - 1."""
    delta = (now - then) & (2**64 - 1)
    return 0 if delta >= 2**63 else delta


def _pool(kernel: _Kernel, address: int) -> tuple[PoolInfo, int, list[dict]]:
    """A pool, the first entry of its workers list, and the work items on its worklist."""
    pool = kernel.pool.read(address)
    head = address + kernel.pool_worklist
    waiting = [] if pool["worklist"] == head else _entries(kernel.work, head, pool["worklist"], "entry")
    age = None
    if waiting and pool["watchdog_ts"] is not None:
        # jiffies read after the pool, so that on a live guest it is at least watchdog_ts.
        age = jiffies_since(kernel.prog.read_u64(kernel.jiffies), pool["watchdog_ts"])
    flags = pool["flags"]
    info = PoolInfo(
        id=pool["id"], cpu=pool["cpu"], node=pool["node"], nice=kernel.attrs.read(pool["attrs"])["nice"],
        flags=flags, flag_names=kernel.flags(flags, "POOL_DISASSOCIATED", "POOL_"),
        refcnt=pool["refcnt"], nr_workers=pool["nr_workers"], nr_idle=pool["nr_idle"],
        nr_running=pool["nr_running"], nr_pending=len(waiting), cpumask=f"{kernel.cpumask(pool['attrs']):08x}",
        worklist_age_jiffies=age)
    return info, pool["workers"], waiting


def _worker(kernel: _Kernel, worker: dict, pool: PoolInfo) -> WorkerInfo:
    current = _symbol(kernel, worker["current_func"]) if worker["current_work"] else None
    # A BH pool's worker runs in softirq context: it has no task.
    task = kernel.task.read(worker["task"]) if worker["task"] else {"pid": None, "comm": b"[bh]"}
    flags = worker["flags"]
    return WorkerInfo(task["pid"], worker["id"], pool.id, pool.cpu, cstr(task["comm"]), cstr(worker["desc"]),
                      current, worker["last_active"], flags, kernel.flags(flags, "WORKER_IDLE", "WORKER_"))
