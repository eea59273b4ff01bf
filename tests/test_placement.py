"""Where work items ran against where they were queued, by the guest's topology as sysfs showed it."""

import numpy as np
import pytest

from wqkit import analysis
from wqkit.analysis.placement import PLACES
from wqkit.analysis.synthetic import write_synthetic_run
from wqkit.errors import WqkitError
from wqkit.runs.provenance import CPU_TOPOLOGY_FILES, cpu_list_numbers, cpu_topology, topology_files


def sysfs_of_two_sockets() -> list[str | None]:
    """What a guest with sockets=2,cores=2,threads=2 and one node per socket answers for
    topology_files(8): CPUs 2k and 2k+1 are SMT siblings, CPUs 0-3 share an L3 and node 0."""
    texts: list[str | None] = []
    for cpu in range(8):
        package, core = cpu // 4, (cpu % 4) // 2
        first = cpu - cpu % 2
        texts += [f"{package}\n", f"{core}\n", f"{first}-{first + 1}\n", f"{package * 4}-{package * 4 + 3}\n",
                  f"{first}-{first + 1}\n"]
    return texts + ["0-3\n", "4-7\n"] + [None] * 6


def test_the_topology_is_read_from_sysfs_texts():
    texts = sysfs_of_two_sockets()
    assert len(topology_files(8)) == len(texts) == 8 * len(CPU_TOPOLOGY_FILES) + 8
    topology = cpu_topology(8, texts)
    assert topology["cpu"] == list(range(8)) and topology["package"] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert topology["smt"][5] == "4-5" and topology["cache"][5] == "4-7" and topology["node"] == topology["package"]
    assert cpu_list_numbers("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]


def test_an_offline_cpu_and_a_machine_without_numa_or_l3():
    texts = sysfs_of_two_sockets()[:8 * 5]
    texts[3 * 5:4 * 5] = [None] * 5                      # CPU 3 offline
    texts[5 * 5 + 3] = None                              # CPU 5 has no L3: its L2 is its cache
    topology = cpu_topology(8, texts + [None] * 8)
    assert topology["cpu"] == [0, 1, 2, 4, 5, 6, 7] and topology["cache"][4] == "4-5"
    assert set(topology["node"]) == {0}


def test_each_item_counts_in_the_nearest_place_that_holds_its_cpu(tmp_path):
    ran_on = np.array([0] * 5 + [1] * 4 + [2, 3, 3] + [4] * 2 + [7])      # queued on 0
    run = analysis.load_run(write_synthetic_run(
        tmp_path / "r", np.full(len(ran_on), 1000), cpu_queue=np.zeros(len(ran_on)), cpu_exec=ran_on,
        cpu_topology=cpu_topology(8, sysfs_of_two_sockets())))
    table = analysis.df_placement(run)
    assert table.index.tolist() == list(PLACES)
    assert table["items"].tolist() == [5, 4, 3, 0, 3]    # one node per socket: nothing is "same node" only
    assert table["share"].sum() == pytest.approx(1.0)
    row = analysis.df_placements([run]).iloc[0]
    assert row["queuing CPU"] == pytest.approx(5 / 15) and row["exec_cpus"] == 6 and row["workers"] == 1


def test_a_node_wider_than_a_cache_counts_as_same_node(tmp_path):
    texts = sysfs_of_two_sockets()
    texts[8 * 5:] = ["0-7\n"] + [None] * 7              # one node for both sockets
    run = analysis.load_run(write_synthetic_run(
        tmp_path / "r", np.full(2, 1000), cpu_queue=np.array([1, 1]), cpu_exec=np.array([6, 0]),
        cpu_topology=cpu_topology(8, texts)))
    assert analysis.df_placement(run)["items"].to_dict() == {
        "queuing CPU": 0, "SMT sibling": 1, "same cache": 0, "same node": 1, "elsewhere": 0}


def test_a_run_without_a_recorded_topology_is_a_one_line_error(tmp_path):
    run = analysis.load_run(write_synthetic_run(tmp_path / "r", np.full(3, 1000)))
    with pytest.raises(WqkitError, match="records no CPU topology"):
        analysis.df_placement(run)


def test_a_kworker_census_names_the_workers_and_unbound_pools_a_run_made():
    from wqkit.inspect.kworkers import census, pool_of

    # Names as 6.12 and 7.3 show them in /proc/PID/comm (the workqueue last run after the dash).
    assert [pool_of(c) for c in ("kworker/0:1-events", "kworker/1:0H-kblockd", "kworker/u8:2-events_unbound",
                                 "kworker/u33:0", "kworker/R-rcu_gp", "wqkit_rescuer")] == \
        ["cpu0", "cpu1H", "unbound8", "unbound33", None, None]
    before = {10: "kworker/0:1-events", 11: "kworker/u8:0", 12: "kworker/1:2"}
    after = {10: "kworker/0:1-events", 11: "kworker/u8:0-wq", 20: "kworker/u12:0", 21: "kworker/u12:1-wqkit",
             22: "kworker/u9:0", 23: "kworker/0:2"}
    assert census(before, after) == {"before": 3, "after": 6, "created": 4, "gone": 1,
                                     "created_per_pool": {"cpu0": 1, "unbound12": 2, "unbound9": 1},
                                     "pools_created": ["unbound9", "unbound12"]}
