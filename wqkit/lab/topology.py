"""The shape of the lab's machine: sockets, dies, cores, SMT threads and NUMA nodes, as QEMU gives them.

QEMU gives a guest any CPU topology (``-smp sockets=,dies=,cores=,threads=``)
and NUMA layout (``-numa node``) without the hardware, under TCG too; each
socket has its own last-level cache (QEMU's L3 per socket). Where work items
run, which pods and pools an affinity scope makes, how many workers a pool
creates are facts of the kernel's logic: valid under TCG, and what affinity
scopes change. A topology is written ``sockets=2,cores=4,threads=2,numa=2``
(keys left out are 1; CPUs are the product), or named (:data:`SHAPES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from wqkit.errors import WqkitError
from wqkit.lab.guest_ram import backend_options, machine_ram_options

#: The keys a topology takes, in QEMU's -smp order, then the NUMA nodes.
KEYS = ("sockets", "dies", "cores", "threads", "numa")
#: Named shapes: what a kernel researcher asks for by name.
SHAPES = {
    "flat2": "cores=2",
    "smt": "cores=4,threads=2",
    "2socket": "sockets=2,cores=4,threads=2,numa=2",
}
#: The ceiling on lab CPUs (the kernel's CONFIG_NR_CPUS in wqkit's builds): wqkit.lab.vm's CPUS_RANGE.
MAX_CPUS = 64


@dataclass(frozen=True)
class Topology:
    """One lab machine shape; ``numa`` nodes each hold whole sockets."""

    sockets: int = 1
    dies: int = 1
    cores: int = 1
    threads: int = 1
    numa: int = 1

    @property
    def cpus(self) -> int:
        return self.sockets * self.dies * self.cores * self.threads

    @property
    def text(self) -> str:
        """The shape as written (keys that are not 1, ``cores=1`` for a single CPU)."""
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                        if getattr(self, f.name) != 1) or "cores=1"

    def node_cpus(self) -> list[range]:
        """The CPUs of each NUMA node, in QEMU's numbering (socket-major)."""
        per_node = self.cpus // self.numa
        return [range(n * per_node, (n + 1) * per_node) for n in range(self.numa)]

    def qemu_options(self, memory: str) -> list[str]:
        """QEMU's options for this shape: ``-smp``, and per NUMA node a memory backend of an equal
        share of ``memory`` with its CPUs (``-numa node,memdev=``); one backend for all the RAM
        without NUMA nodes. Every backend is one the host can map (wqkit.lab.guest_ram)."""
        options = ["-smp", f"{self.cpus},sockets={self.sockets},dies={self.dies},cores={self.cores},"
                           f"threads={self.threads}"]
        if self.numa > 1:
            share = memory_mib(memory) // self.numa
            for node, cpus in enumerate(self.node_cpus()):
                options += [*backend_options(f"wqkit-node{node}", share),
                            "-numa", f"node,nodeid={node},cpus={cpus.start}-{cpus.stop - 1},memdev=wqkit-node{node}"]
        else:
            options += machine_ram_options(memory_mib(memory))
        return options


def memory_mib(memory: str) -> int:
    """``2G``, ``1536M`` (QEMU's -m) in MiB, or a one-line error."""
    match = re.fullmatch(r"(\d+)([MG]?)", memory.strip().upper())
    if not match:
        raise WqkitError(f"memory={memory!r} is not a size such as 2G or 1536M")
    return int(match.group(1)) * (1024 if match.group(2) == "G" else 1)


def parse_topology(text: str) -> Topology:
    """A topology from ``sockets=2,cores=4,threads=2,numa=2`` or a name of :data:`SHAPES`; a
    shape QEMU or the kernel cannot take is a one-line error, before anything boots."""
    spec = SHAPES.get(text.strip(), text)
    values: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, _, value = item.partition("=")
        if key not in KEYS:
            raise WqkitError(f"topology {text!r}: unknown key {key!r} (keys: {', '.join(KEYS)}; "
                             f"or a name: {', '.join(SHAPES)})")
        if key in values:
            raise WqkitError(f"topology {text!r}: {key} is given twice")
        if not value.isdigit() or int(value) < 1:
            raise WqkitError(f"topology {text!r}: {key}={value!r} is not a whole number of at least 1")
        values[key] = int(value)
    if not values:
        raise WqkitError(f"topology {text!r}: give at least one of {', '.join(KEYS)}, or a name: {', '.join(SHAPES)}")
    topology = Topology(**values)
    if topology.cpus > MAX_CPUS:
        raise WqkitError(f"topology {text!r} makes {topology.cpus} CPUs: the lab takes at most {MAX_CPUS}")
    if topology.sockets % topology.numa:
        raise WqkitError(f"topology {text!r}: {topology.numa} NUMA nodes do not divide {topology.sockets} "
                         "sockets (a node holds whole sockets)")
    return topology
