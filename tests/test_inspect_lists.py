"""Live list walks: a kernel list that changes under the reader ends the walk at once."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from wqkit.inspect.helpers import ListChanged
from wqkit.inspect.snapshot import _entries

HEAD = 0x1000


class _ListInMemory:
    """A StructLayout stand-in over a dict of entry address -> next pointer (node at offset 0)."""

    class type:      # what the error message names
        @staticmethod
        def type_name() -> str:
            return "struct work_struct"

    def __init__(self, links: dict[int, int]) -> None:
        self.links, self.reads = links, 0

    def offset(self, designator: str) -> int:
        return 0

    def read(self, address: int) -> dict:
        self.reads += 1
        return {"next": self.links[address]}


def test_a_list_is_walked_back_to_its_head():
    layout = _ListInMemory({0x2000: 0x3000, 0x3000: HEAD})
    assert [entry["address"] for entry in _entries(layout, HEAD, 0x2000, "entry")] == [0x2000, 0x3000]


@pytest.mark.parametrize("links", [
    {0x2000: 0x3000, 0x3000: 0x3000},                # list_del_init(): the entry points to itself
    {0x2000: 0x3000, 0x3000: 0x4000, 0x4000: 0x2000},  # moved to another list that loops without the head
])
def test_an_entry_met_twice_ends_the_walk_at_once(links):
    layout = _ListInMemory(links)
    with pytest.raises(ListChanged, match="changed while being read"):
        _entries(layout, HEAD, 0x2000, "entry")
    assert layout.reads == len(links)     # not MAX_LIST_ENTRIES reads


def test_worklist_age_is_never_negative_nor_wrapped():
    from wqkit.inspect.snapshot import jiffies_since

    assert jiffies_since(1_000, 400) == 600
    # watchdog_ts moved after jiffies was read on a live guest: no wrap to ~1.8e19.
    assert jiffies_since(1_000, 1_003) == 0
    # jiffies starts 5 minutes before the 32-bit wrap and is unsigned 64-bit: still plain differences.
    assert jiffies_since(2**64 - 10, 2**64 - 30) == 20
    assert jiffies_since(5, 2**64 - 5) == 10


def test_the_state_sampler_s_thread_gets_the_shortest_slice_the_scheduler_takes():
    # The kernel's own account of the thread (/proc/thread-self/sched, se.slice on 6.12+), not the
    # value wqkit set: a slice the kernel ignored would not be there.
    import threading

    from wqkit.inspect import timeline

    seen: list = []

    def sampler_thread() -> None:
        sched = timeline._raise_priority()
        fields = dict(map(str.strip, line.split(":", 1)) for line in Path("/proc/thread-self/sched").read_text().splitlines()
                      if line.count(":") == 1)
        seen.append((sched, int(fields["se.slice"]) if "se.slice" in fields else None))

    thread = threading.Thread(target=sampler_thread)
    thread.start()
    thread.join()
    (sched, kernel_slice), = seen
    assert sched["nice"] in (0, timeline.SAMPLER_NICE)        # an ordinary user's, root's
    # What the run's metadata says is what the kernel did.
    assert (sched["slice_ns"] is not None) == (kernel_slice == timeline.SAMPLER_SLICE_NS), (sched, kernel_slice)
    release = tuple(int(n) for n in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    if release >= (6, 12):      # EEVDF's custom slices: this machine's kernel, and CI's
        assert kernel_slice == timeline.SAMPLER_SLICE_NS
