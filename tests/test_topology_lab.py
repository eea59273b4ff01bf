"""A declared machine shape is what the guest's kernel sees: CPUs, sockets, SMT siblings, caches, NUMA nodes."""

import pytest

from wqkit.lab.topology import parse_topology
from wqkit.target import LabTarget

pytestmark = pytest.mark.lab


def _cpu_files(target, cpus: int, name: str) -> list[str]:
    return [v.strip() for v in target.read_files([f"/sys/devices/system/cpu/cpu{c}/{name}" for c in range(cpus)])]


def test_the_guest_s_sysfs_shows_the_declared_topology(request, tmp_path):
    from conftest import lab_kernel

    shape = parse_topology("sockets=2,cores=2,threads=2,numa=2")
    with LabTarget(kernel=lab_kernel(request.config.getoption("--lab-kernel")), topology=shape,
                   use_kept=False, progress=lambda m: None) as target:
        assert target.read("/sys/devices/system/cpu/online").strip() == "0-7"
        assert _cpu_files(target, 8, "topology/physical_package_id") == ["0"] * 4 + ["1"] * 4
        siblings = _cpu_files(target, 8, "topology/thread_siblings_list")
        assert siblings == ["0-1", "0-1", "2-3", "2-3", "4-5", "4-5", "6-7", "6-7"]
        # Each socket its own last-level cache.
        caches = _cpu_files(target, 8, "cache/index3/shared_cpu_list")
        assert caches == ["0-3"] * 4 + ["4-7"] * 4
        nodes = target.read_files(["/sys/devices/system/node/node0/cpulist", "/sys/devices/system/node/node1/cpulist"])
        assert [n.strip() for n in nodes] == ["0-3", "4-7"]
        assert target.session.topology == shape
