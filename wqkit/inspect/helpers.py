"""drgn helpers over the kernel's workqueues, in the style of drgn.helpers.linux.

Each helper takes drgn Objects and reads the layout of the kernel the program
is attached to (Linux 6.12 is the target). Iterators yield Objects.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import drgn
from drgn import Object, Program, cast
from drgn.helpers.linux.idr import idr_for_each
from drgn.helpers.linux.kallsyms import module_kallsyms
from drgn.helpers.linux.list import list_for_each, list_for_each_entry
from drgn.helpers.linux.module import address_to_module

from wqkit.errors import WqkitError


def core_timekeeper(prog: Program) -> Object:
    """The kernel's core timekeeper (``struct tk_data``): ``tk_core`` up to 6.x, the
    ``TIMEKEEPER_CORE`` entry of ``timekeeper_data[]`` once the auxiliary clocks came (7.x)."""
    try:
        return prog["tk_core"]
    except LookupError:
        return prog["timekeeper_data"][prog["TIMEKEEPER_CORE"].value_()]


def affinity_scope_names(prog: Program) -> dict[int, str]:
    """``enum wq_affn_scope``'s values by the names the kernel prints (``wq_affn_names[]``:
    ``default``, ``cpu``, ``smt``, ``cache``, ``cache_shard`` on 7.1+, ``numa``, ``system``);
    empty before Linux 6.6. Read from the kernel's own enum, so a new scope comes with it."""
    try:
        names, scopes = prog["wq_affn_names"], prog.type("enum wq_affn_scope").enumerators
    except LookupError:
        return {}
    return {value: names[value].string_().decode() for name, value in scopes if name != "WQ_AFFN_NR_TYPES"}


def affinity_scopes(prog: Program) -> Iterator[tuple[int, str, Object]]:
    """Each affinity scope of unbound workqueues (all but ``default``): its value in ``enum
    wq_affn_scope`` (the kernel's default is ``wq_affn_dfl``), its name and its ``struct
    wq_pod_type``."""
    for value, name in affinity_scope_names(prog).items():
        if name != "default":
            yield value, name, prog["wq_pod_types"][value]


def for_each_workqueue(prog: Program) -> Iterator[Object]:
    """Iterate over every ``struct workqueue_struct *`` on the ``workqueues`` list."""
    return list_for_each_entry("struct workqueue_struct", prog["workqueues"].address_of_(), "list")


def workqueue_name(wq: Object) -> str:
    """The name of a workqueue."""
    return wq.name.string_().decode(errors="replace")


def find_workqueue(prog: Program, name: str) -> Object | None:
    """The workqueue called ``name``, or None."""
    return next((wq for wq in for_each_workqueue(prog) if workqueue_name(wq) == name), None)


def for_each_pwq(wq: Object) -> Iterator[Object]:
    """Iterate over the ``struct pool_workqueue *`` of a workqueue."""
    return list_for_each_entry("struct pool_workqueue", wq.pwqs.address_of_(), "pwqs_node")


def for_each_pool(prog: Program) -> Iterator[Object]:
    """Iterate over every ``struct worker_pool *`` (per-CPU, BH and unbound), by pool ID."""
    for _, entry in idr_for_each(prog["worker_pool_idr"].address_of_()):
        yield cast("struct worker_pool *", entry)


def for_each_pool_worker(pool: Object) -> Iterator[Object]:
    """Iterate over the ``struct worker *`` attached to a pool."""
    return list_for_each_entry("struct worker", pool.workers.address_of_(), "node")


#: A kernel list read from a live kernel may change under the reader (an entry
#: freed and reused): no workqueue list is anywhere near this long, so a walk
#: that gets here has lost its way and stops with ListChanged instead of looping.
MAX_LIST_ENTRIES = 1_000_000


class ListChanged(WqkitError):
    """A kernel list did not lead back to its head: it changed while being read."""


def bounded(entries: Iterable[Object], what: str, limit: int = MAX_LIST_ENTRIES) -> Iterator[Object]:
    """The pointers ``entries`` of a list walk, failing with ListChanged at the first one met
    twice (list_del_init() makes an entry point to itself) or past ``limit`` of them."""
    seen: set[int] = set()
    for entry in entries:
        address = entry.value_()
        if address in seen or len(seen) >= limit:
            raise ListChanged(f"{what} changed while being read (entry {address:#x} after {len(seen)} entries)")
        seen.add(address)
        yield entry


def pool_nr_pending(pool: Object) -> int:
    """Work items waiting on the pool's worklist (a bounded walk, see MAX_LIST_ENTRIES)."""
    return sum(1 for _ in bounded(list_for_each(pool.worklist.address_of_()), f"pool {pool.id.value_()} worklist"))


def module_symbol(prog: Program, address: int, cache: dict | None = None) -> str | None:
    """The name of the module function at ``address``, from the module's own kallsyms in memory.

    Over QMP or on a vmcore drgn has only the vmlinux's symbols; a work
    function of a module is found this way, as /proc/kallsyms would. ``cache``
    keeps each module's symbol table between calls, by :func:`module_load_key`.
    """
    module = address_to_module(prog, address)
    if not module:
        return None
    key = module_load_key(module)
    if cache is None or key not in cache:
        symbols = sorted(module_kallsyms(module), key=lambda sym: sym.address)
        if cache is None:
            cache = {}
        cache[key] = symbols
    found = [sym for sym in cache[key] if sym.address <= address < sym.address + max(sym.size, 1)]
    return found[0].name if found else None


def module_load_key(module: Object) -> tuple[int, bytes, int]:
    """What tells one load of a module from any other: its address and name, and the id of its
    sysfs directory's kernfs node, allocated anew at each load. A module rebuilt and loaded
    again at the same address (as an unload-reload usually is) gets another key."""
    return module.value_(), module.name.string_(), module.mkobj.kobj.sd.id.value_()


def decode_flags(prog: Program, value: int, known_flag: str, prefix: str) -> list[str]:
    """Names of the bits of ``value`` (lower case, prefix removed), per the enum that defines ``known_flag``.

    The enum is found through one of its flags because its name varies:
    ``enum worker_flags`` on 6.12 is an anonymous enum on 6.1. Bits the enum
    does not name are shown in hex, so nothing is hidden.
    """
    try:
        enumerators = prog[known_flag].type_.enumerators or ()
    except (KeyError, LookupError, AttributeError):
        enumerators = ()
    names, known = [], 0
    for name, bit in enumerators:
        if bit and bit & (bit - 1) == 0 and value & bit and name.lstrip("_").startswith(prefix):
            names.append(name.lstrip("_")[len(prefix):].lower())
            known |= bit
    if value & ~known:
        names.append(hex(value & ~known))
    return names


def constant(prog: Program, name: str, default: int | None = None) -> int | None:
    """The value of an enumerator or object called ``name``, or ``default`` if absent."""
    try:
        return prog[name].value_()
    except (KeyError, LookupError, drgn.FaultError):
        return default
