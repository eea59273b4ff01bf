"""kserver in the lab: task graphs run on workqueues, dependencies respected, bad graphs refused."""

import pytest
from conftest import assert_dependencies_respected, assert_unloaded_cleanly

from wqkit import analysis
from wqkit.experiments import graph, graph_fuzz, kmod
from wqkit.errors import WqkitError
from wqkit.experiments.runner import GRAPH_DIR, run_experiment

pytestmark = pytest.mark.lab


def run_graph(lab_target, tmp_path, task_graph, **values):
    path = run_experiment("kserver", values, target=lab_target, out=tmp_path, graph=task_graph,
                          progress=lambda m: None)
    return analysis.load_run(path)


def test_fork_join_and_layered_graphs_respect_every_dependency(lab_target, tmp_path):
    for task_graph in (graph.fork_join(width=6, depth=2, value=5000), graph.layered(layers=4, width=5, seed=1,
                                                                                       value=5000)):
        run = run_graph(lab_target, tmp_path, task_graph, repeat=4, wq_flags="unbound")
        assert run.ok and run.meta["graph"]["tasks"] == len(task_graph.tasks)
        assert analysis.load_graph(run) == task_graph
        assert_dependencies_respected(run, task_graph)


def test_a_chain_runs_strictly_in_order(lab_target, tmp_path):
    chain = graph.chain(8, kind="sleep", value=200)
    run = run_graph(lab_target, tmp_path, chain, repeat=3, cpus="0,1")
    tasks = assert_dependencies_respected(run, chain)
    for rep in range(3):
        one = tasks.xs(rep, level="rep").sort_index()
        assert (one["start"].to_numpy()[1:] >= one["end"].to_numpy()[:-1]).all()
    # Round-robin placement: task i is queued on CPU i % 2 (a per-CPU workqueue runs it there).
    assert (tasks.reset_index()["cpu"] == tasks.reset_index()["task"] % 2).all()


def test_max_active_1_never_overlaps_two_tasks(lab_target, tmp_path):
    fork = graph.fork_join(width=6, depth=1, value=20_000)
    run = run_graph(lab_target, tmp_path, fork, repeat=3, max_active=1, wq_flags="unbound")
    tasks = assert_dependencies_respected(run, fork)
    intervals = sorted(zip(tasks["start"], tasks["end"]))
    assert all(later[0] >= earlier[1] for earlier, later in zip(intervals, intervals[1:]))


@pytest.mark.parametrize("text, message", [
    ("task 0 busy 10\ntask 1 busy 10\nedge 0 1\nedge 1 0\n", "graph: cycle through task 0"),
    ("task 0 busy 10\nedge 0 7\n", "graph: edge 0 -> 7: no task 7"),
    ("task 0 busy 10\ntask 0 sleep 3\n", "graph line 2: task 0 is declared twice"),
    ("task 0 sleep 5000000\n", "graph line 1: task 0: sleep '5000000' is not a number in 0..1000000"),
    # Each mem task writes a buffer of its own: 5 x 64 MiB is more than the 256 MiB allowed.
    ("".join(f"task {i} mem 65536\n" for i in range(5)), "graph line 5: mem tasks write more than 262144 KiB"),
])
def test_the_module_refuses_a_bad_graph_and_keeps_nothing(lab_target, text, message):
    ko = kmod.build(lab_target) / "wq_kserver.ko"
    lab_target.run("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
    before = kmod.log_mark(lab_target)
    lab_target.run(f"insmod {ko}", check=True)
    try:
        lab_target.run(f"printf '{text}' > {GRAPH_DIR}/graph", check=True)
        result = lab_target.run(f"echo 1 > {GRAPH_DIR}/run")
        assert result.returncode != 0      # the write fails (-EINVAL); dash prints it as an I/O error
        log = kmod.log_since(lab_target, before)
        assert message in [line for line in log if "graph" in line and "wq_kserver:" in line][-1]
        assert lab_target.run("cat /sys/module/wq_kserver/parameters/nr_samples", check=True).stdout.strip() == "0"
        # Nothing of the bad graph is left: a good one is taken afterwards.
        lab_target.run(f"printf 'task 0 busy 10\\n' > {GRAPH_DIR}/graph && echo 1 > {GRAPH_DIR}/run", check=True)
    finally:
        lab_target.run("rmmod wq_kserver", check=True)


def test_wqkit_refuses_a_bad_graph_before_any_boot(tmp_path):
    bad = graph.TaskGraph.from_text("task 0 busy 1\ntask 1 busy 1\nedge 0 1\nedge 1 0\n")
    with pytest.raises(WqkitError, match="cycle through task 0"):
        run_experiment("kserver", {}, target=None, out=tmp_path, graph=bad)
    with pytest.raises(WqkitError, match="give a task graph"):
        run_experiment("kserver", {}, target=None, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", [
    graph.fork_join(width=4, depth=3, kind="sleep", value=20000),
    # 400 levels of 2 ms: a repetition lasts about a second.
    graph.chain(400, kind="sleep", value=2000),
], ids=["fork-join", "long-chain"])
def test_unloading_mid_run_stops_at_once_and_leaves_nothing_behind(lab_target, shape):
    # Once the unload begins no finishing task queues a successor, so the workqueue drains in a
    # few flushes, not one per level of the graph (the kernel would warn "isn't complete").
    ko = kmod.build(lab_target) / "wq_kserver.ko"
    lab_target.run("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
    before = kmod.log_mark(lab_target)
    lab_target.run(f"insmod {ko} repeat=100", check=True)
    lab_target.run(f"cat > {GRAPH_DIR}/graph <<'EOF'\n{shape.to_text()}EOF\necho 1 > {GRAPH_DIR}/run", check=True)
    unload = lab_target.run("sleep 2; start=$(date +%s%N); rmmod wq_kserver; echo $(( ($(date +%s%N) - start) / 1000000 ))",
                            check=True, timeout=300)
    assert int(unload.stdout.split()[-1]) < 5000, "the unload ran the rest of the graph"
    assert_unloaded_cleanly(lab_target, "wq_kserver", before)


def test_a_graph_written_in_many_chunks_is_taken_whole(lab_target):
    # 600 tasks written 512 bytes at a time (as a pipe splits a large graph): one graph, run once.
    layered = graph.layered(layers=20, width=30, p=0.2, seed=1, kind="busy", value=100)
    text = layered.to_text()
    assert len(text) > 8 * 512
    ko = kmod.build(lab_target) / "wq_kserver.ko"
    lab_target.run("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
    staged = lab_target.session.shared_dir / "chunked-graph.txt"
    staged.write_text(text)
    lab_target.run(f"insmod {ko} repeat=1", check=True)
    try:
        lab_target.run(f"dd if={staged} of={GRAPH_DIR}/graph bs=512 status=none && echo 1 > {GRAPH_DIR}/run",
                       check=True)
        assert lab_target.run("cat /sys/module/wq_kserver/parameters/nr_samples",
                              check=True).stdout.strip() == str(2 * len(layered.tasks))
    finally:
        lab_target.run("rmmod wq_kserver", check=True, timeout=300)
        staged.unlink()


def test_wqkit_refuses_what_the_module_would_before_any_boot(tmp_path):
    big = graph.chain(2000, kind="busy", value=1)
    with pytest.raises(WqkitError, match="makes 4000000 samples"):
        run_experiment("kserver", {"repeat": 1000}, target=None, out=tmp_path, graph=big)
    greedy = graph.fork_join(width=8, depth=1, kind="mem", value=64 * 1024)
    with pytest.raises(WqkitError, match="mem tasks write .* KiB in all"):
        run_experiment("kserver", {}, target=None, out=tmp_path, graph=greedy)
    assert list(tmp_path.iterdir()) == []


def test_a_trial_reads_back_what_the_module_parsed_and_a_planted_early_start_fails_with_eio(lab_target):
    """After a trial, the module's "parsed" file is Python's parse of the same text (what the
    fuzzer compares for every accepted input); with the test fault set, a task with two
    predecessors starts when the first (1 ms) finishes, before the second (300 ms): the trial's
    order check must refuse it with EIO and its pr_err."""
    join = graph.TaskGraph.from_text("task 0 sleep 1000\ntask 1 sleep 300000\ntask 2 busy 1\n"
                                     "edge 0 2\nedge 1 2\n")
    ko = kmod.build(lab_target) / "wq_kserver.ko"
    lab_target.run("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
    trial = f"printf '%s' '{join.to_text()}' > {GRAPH_DIR}/graph && echo 1 > {GRAPH_DIR}/trial"
    lab_target.run(f"insmod {ko} repeat=3", check=True)
    try:
        lab_target.run(trial, check=True)
        parsed = lab_target.run(f"cat {GRAPH_DIR}/parsed", check=True).stdout.strip().splitlines()
        assert graph_fuzz.parse_difference(join.to_text().encode(), 3, parsed) is None, parsed
        assert parsed[0] == "tasks 3 edges 2 samples 18"
        lab_target.run(f"echo 1 > {GRAPH_DIR}/fault_early_start", check=True)
        since = lab_target.kernel_log()[1]
        faulty = lab_target.run(trial)
        assert faulty.returncode != 0 and "I/O error" in faulty.stderr
        log = [line for line in lab_target.kernel_log(since)[0] if "wq_kserver" in line]
        assert any("trial: task 2 started before task 1 had finished" in line for line in log), log
        assert lab_target.run(f"cat {GRAPH_DIR}/parsed", check=True).stdout == ""    # nothing kept of it
        lab_target.run(f"echo 0 > {GRAPH_DIR}/fault_early_start && {trial}", check=True)
    finally:
        lab_target.run("rmmod wq_kserver", check=True, timeout=300)
