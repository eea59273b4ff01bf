"""The kernel's registered kprobes and the hits they missed, in the style of drgn.helpers.linux.

bpftrace and BCC attach kprobes and kretprobes through perf: those are not in
tracefs' ``kprobe_profile``, but every registered probe is in the kernel's
``kprobe_table``. A kprobe misses a hit that comes while another probe's
handler runs on that CPU (``kprobe.nmissed``); a kretprobe misses a return
when no free instance is left for the call (``kretprobe.nmissed``, bounded by
its ``maxactive``): the return of that call is never traced.
"""

from __future__ import annotations

from typing import Iterator

from drgn import Object, Program, container_of
from drgn.helpers.linux.list import hlist_for_each_entry, list_for_each_entry


def for_each_kprobe(prog: Program) -> Iterator[Object]:
    """Every registered ``struct kprobe *``; of an aggregate kprobe (several probes at one
    address, as when two tracers probe one function), the probes it holds."""
    aggregate = prog["aggr_pre_handler"].address_
    for head in prog["kprobe_table"]:
        for kp in hlist_for_each_entry("struct kprobe", head.address_of_(), "hlist"):
            if kp.pre_handler.value_() == aggregate:
                yield from list_for_each_entry("struct kprobe", kp.list.address_of_(), "list")
            else:
                yield kp


def is_kretprobe(prog: Program, kp: Object) -> bool:
    """Whether a kprobe is the entry half of a kretprobe."""
    return kp.pre_handler.value_() == prog["pre_handler_kretprobe"].address_


def kprobe_misses(prog: Program, function: str) -> dict[str, int]:
    """The kprobes and kretprobes registered on ``function``, and the hits and returns they missed."""
    symbol = prog.symbol(function)
    found = {"kprobes": 0, "kretprobes": 0, "missed": 0}
    for kp in for_each_kprobe(prog):
        if not symbol.address <= kp.addr.value_() < symbol.address + max(symbol.size, 1):
            continue
        missed = kp.nmissed.value_()
        if is_kretprobe(prog, kp):
            found["kretprobes"] += 1
            missed += container_of(kp, "struct kretprobe", "kp").nmissed.value_()
        else:
            found["kprobes"] += 1
        found["missed"] += missed
    return found
