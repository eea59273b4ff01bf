"""Lab machine shapes: parsed and refused before boot, given to QEMU, set as a study's lab factor."""

import pytest

from wqkit.errors import WqkitError
from wqkit.lab.topology import SHAPES, Topology, parse_topology
from wqkit.lab.vm import CPUS_RANGE
from wqkit.study.spec import read_study


def test_a_topology_is_its_keys_or_a_name():
    shape = parse_topology("sockets=2,cores=4,threads=2,numa=2")
    assert shape == Topology(sockets=2, cores=4, threads=2, numa=2) and shape.cpus == 16
    assert parse_topology(shape.text) == shape and parse_topology("2socket") == shape
    assert parse_topology("cores=2").cpus == 2 and Topology().text == "cores=1"
    assert [list(r) for r in shape.node_cpus()] == [list(range(8)), list(range(8, 16))]
    assert all(parse_topology(name).cpus <= CPUS_RANGE[1] for name in SHAPES)


def test_qemu_gets_the_shape_and_one_mappable_memory_backend_per_node():
    options = parse_topology("sockets=2,cores=2,numa=2").qemu_options("2G")
    assert options == ["-smp", "4,sockets=2,dies=1,cores=2,threads=1",
                       "-object", "memory-backend-memfd,id=wqkit-node0,size=1024M,share=on",
                       "-numa", "node,nodeid=0,cpus=0-1,memdev=wqkit-node0",
                       "-object", "memory-backend-memfd,id=wqkit-node1,size=1024M,share=on",
                       "-numa", "node,nodeid=1,cpus=2-3,memdev=wqkit-node1"]
    # Without NUMA nodes, one backend is the machine's memory.
    assert parse_topology("cores=4,threads=2").qemu_options("2G") == [
        "-smp", "8,sockets=1,dies=1,cores=4,threads=2",
        "-object", "memory-backend-memfd,id=wqkit-ram,size=2048M,share=on", "-machine", "memory-backend=wqkit-ram"]


@pytest.mark.parametrize("text, message", [
    ("sockets=8,cores=8,threads=2", "makes 128 CPUs: the lab takes at most 64"),
    ("sockets=3,cores=2,numa=2", "2 NUMA nodes do not divide 3 sockets"),
    ("socket=2", "unknown key 'socket'"),
    ("cores=0", "cores='0' is not a whole number of at least 1"),
    ("cores=two", "cores='two' is not a whole number"),
    ("cores=2,cores=4", "cores is given twice"),
    ("", "give at least one of"),
])
def test_a_shape_the_lab_cannot_take_is_a_one_line_error(text, message):
    with pytest.raises(WqkitError, match=message):
        parse_topology(text)


def test_the_cli_refuses_a_topology_before_boot_and_cpus_that_disagree():
    import subprocess
    import sys

    for args, message in ((["--topology", "sockets=8,cores=8,threads=2"], "makes 128 CPUs"),
                          (["--topology", "smt", "--cpus", "4"], "--cpus 4 and --topology smt (8 CPUs) disagree")):
        proc = subprocess.run([sys.executable, "-m", "wqkit.cli", "lab", "run", *args, "--", "true"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_topology_is_a_lab_factor_of_a_study(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('boots = 2\n[[experiment]]\nname = "insert_exec"\n[factors]\n'
                    '"lab.topology" = ["flat2", "sockets=2,cores=4,threads=2,numa=2"]\n')
    points = sorted(read_study(path).points, key=lambda p: p.cpus)
    assert [(p.cpus, p.topology) for p in points] == [(2, "cores=2"), (16, "sockets=2,cores=4,threads=2,numa=2")]
    assert points[0].lab != points[1].lab and points[1].identity["topology"] == "sockets=2,cores=4,threads=2,numa=2"
    path.write_text(path.read_text() + '"lab.cpus" = [2]\n')
    with pytest.raises(WqkitError, match="give cpus or topology, not both"):
        read_study(path)
    path.write_text('boots = 2\n[[experiment]]\nname = "insert_exec"\n[factors]\n"lab.topology" = ["cores=99"]\n')
    with pytest.raises(WqkitError, match="makes 99 CPUs"):
        read_study(path)
