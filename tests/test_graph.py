"""Task graphs: shapes, the module's text format, validation, networkx, STG files, bounds."""

import random

import pytest
from hypothesis import given, settings, strategies as st

from wqkit.experiments import graph as g
from wqkit.experiments import graph_fuzz
from wqkit.errors import WqkitError


def test_shapes_have_the_sizes_and_edges_they_promise():
    assert len(g.chain(5).edges) == 4
    fj = g.fork_join(width=16, depth=2)
    assert len(fj.tasks) == 1 + 2 * 17 and len(fj.edges) == 2 * 2 * 16
    pipe = g.pipeline(stages=3, items=4)
    assert len(pipe.tasks) == 12 and len(pipe.edges) == 2 * 4 + 3 * 3
    a, b = g.layered(layers=5, width=6, seed=3), g.layered(layers=5, width=6, seed=3)
    assert a == b and a.validate().topological_order()
    assert g.layered(layers=5, width=6, seed=4).edges != a.edges
    # Every task but the first layer's has a predecessor.
    assert sum(1 for preds in a.predecessors().values() if not preds) == 6


def test_text_format_round_trips():
    graph = g.parse_shape("fork-join:width=3,depth=2")
    text = graph.to_text()
    assert text.splitlines()[0] == "task 0 busy 10000" and "edge 0 1" in text
    assert g.TaskGraph.from_text("# a comment\n" + text) == graph


@pytest.mark.parametrize("text, message", [
    ("task 0 busy 10\ntask 1 busy 10\nedge 0 1\nedge 1 0\n", "cycle through task 0"),
    ("task 0 busy 10\nedge 0 7\n", "edge 0 -> 7: no task 7"),
    ("task 0 busy 10\ntask 0 sleep 3\n", "task 0 is declared twice"),
    ("task 0 busy 10\ntask 1 sleep 99999999\n", "task 1: sleep 99999999 is out of range"),
    ("task 0 spin 10\n", "unknown cost kind 'spin'"),
    ("task 5000 busy 1\n", "task 5000: id out of range"),
    ("task 0 busy 1\nedge 0 0\n", "a task cannot wait for itself"),
    ("task 0 busy 1\ntask 1 busy 1\nedge 0 1\nedge 0 1\n", "edge 0 -> 1 is given twice"),
    ("task zero busy 1\n", "line 1: 'zero' is not a number"),
    ("task 1 busy 1 2\n", "line 1: not 'task ID KIND VALUE'"),
    ("task 1 busy +5\n", "line 1: '\\+5' is not a number"),
    ("task 1 busy 1_000\n", "line 1: '1_000' is not a number"),
    ("task 0 busy 1\n\x00", "a NUL byte at offset 14"),
])
def test_bad_graphs_are_one_line_errors(text, message):
    with pytest.raises(WqkitError, match=message) as info:
        g.TaskGraph.from_text(text).validate()
    assert "\n" not in str(info.value)


def test_networkx_round_trip():
    graph = g.pipeline(stages=2, items=3)
    back = g.TaskGraph.from_networkx(graph.to_networkx())
    assert sorted(back.edges) == sorted(graph.edges) and back.tasks == graph.tasks


def test_critical_path_and_lower_bound():
    fj = g.fork_join(width=4, depth=1)          # 0 -> {1,2,3,4} -> 5
    duration = {0: 1.0, 1: 5.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 2.0}
    assert fj.critical_path(duration) == (8.0, [0, 1, 5])
    assert fj.makespan_lower_bound(duration, cpus=1) == 11.0     # all work on one CPU
    assert fj.makespan_lower_bound(duration, cpus=4) == 8.0      # the critical path
    chain = g.chain(3)
    assert chain.makespan_lower_bound({0: 1, 1: 1, 2: 1}, cpus=8) == 3


def test_standard_task_graph_files():
    # N=3 real tasks, dummy entry 0 and exit 4 (STG format, Kasahara lab).
    stg = """3
0 0 0
1 2 1 0
2 3 1 0
3 1 2 1 2
4 0 1 3
# comments after the graph
"""
    graph = g.read_stg(stg, scale=100)
    assert len(graph.tasks) == 5 and graph.tasks[2].value == 300
    assert sorted(graph.edges) == [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)]
    with pytest.raises(WqkitError, match="announces 4 tasks"):
        g.read_stg(stg.replace("3\n0 0 0", "4\n0 0 0", 1))


def test_unknown_shapes_and_sizes():
    with pytest.raises(WqkitError, match="unknown graph shape 'star'"):
        g.parse_shape("star")
    with pytest.raises(WqkitError, match="takes no height"):
        g.parse_shape("chain:height=3")
    with pytest.raises(WqkitError, match="width='x' is not an integer"):
        g.parse_shape("fork-join:width=x")


def kserver_run(path, graph, schedule):
    """A kserver run directory whose one repetition followed ``schedule``: task -> (ready, start,
    end) in µs (tsc_khz 10^6: 1000 cycles a µs)."""
    import json

    import numpy as np
    import pandas as pd

    ids = sorted(graph.tasks)
    rows = []
    for k, task in enumerate(ids):
        ready, start, end = (1000 * t + 10**9 for t in schedule[task])
        rows += [(2 * k, ready, start), (2 * k + 1, start, end)]
    seq, t0, t1 = (np.array(c, dtype=np.uint64) for c in zip(*rows))
    path.mkdir()
    pd.DataFrame({"seq": seq.astype(np.uint32), "t0": t0, "t1": t1, "cycles": (t1 - t0).astype(np.int64),
                  "cpu_queue": np.zeros(len(seq), np.uint16), "cpu_exec": np.zeros(len(seq), np.uint16),
                  "pid": np.full(len(seq), 7, np.uint32)}).to_parquet(path / "samples.parquet", index=False)
    (path / "graph.txt").write_text(graph.to_text())
    (path / "meta.json").write_text(json.dumps({
        "experiment": "kserver", "status": "ok", "tsc_khz": 1_000_000, "cpus": 2, "accel": "kvm",
        "kernel_release": "synthetic", "parameters": {"cpus": ""},
        "samples": {"expected": len(seq), "produced": len(seq), "collected": len(seq), "dropped": 0}}))
    return path


@pytest.mark.parametrize("kind", ["sleep", "busy", "mem"])
def test_the_makespan_bound_counts_sleeping_as_delay_not_work(tmp_path, kind):
    # Fork, 8 tasks of 500 µs, join, on 2 CPUs. Sleeping tasks overlap (8 workers, each asleep):
    # 1.5 ms is achievable, and the bound is the critical path. Busy and mem tasks occupy their
    # CPU: 8 of them take 4 x 500 µs on 2 CPUs.
    from wqkit import analysis

    fj = g.fork_join(width=8, depth=1, kind=kind, value=500)
    first, *middle, last = sorted(fj.tasks)
    if kind == "sleep":
        schedule = {first: (0, 0, 500), last: (1000, 1000, 1500), **{t: (500, 500, 1000) for t in middle}}
        makespan = 1500
    else:
        schedule = {first: (0, 0, 500), last: (2500, 2500, 3000),
                    **{t: (500, 500 + 500 * (i // 2), 1000 + 500 * (i // 2)) for i, t in enumerate(middle)}}
        makespan = 3000
    run = analysis.load_run(kserver_run(tmp_path / "run", fj, schedule))
    row = analysis.df_makespan(run).iloc[0]
    assert row["makespan_ns"] == makespan * 1000
    assert row["critical_path_ns"] == 1500 * 1000
    assert row["cpu_work_ns"] == (0 if kind == "sleep" else 10 * 500 * 1000)
    assert row["lower_bound_ns"] <= row["makespan_ns"] and row["efficiency"] == pytest.approx(
        1.0 if kind == "sleep" else 2500 / 3000)


# -- the parser the module mirrors (wqkit.experiments.graph_fuzz checks both agree in the lab) --

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_a_graph_or_a_one_line_error(data):
    try:
        g.TaskGraph.check_text(data, repeat=1)
    except WqkitError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.sampled_from([b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"  "]),
                                         min_size=1, max_size=8), st.booleans())
def test_blanks_and_comments_do_not_change_the_graph(seed, blanks, comment):
    graph = graph_fuzz.random_graph(random.Random(seed))
    text = graph.to_text().encode()
    for i, blank in enumerate(blanks):
        text = text.replace(b" ", blank, 1 + i % 3)
    if comment:
        text = text.replace(b"\n", b" # said\n")
    assert g.TaskGraph.from_bytes(text) == graph


def test_generated_fuzz_inputs_cover_every_limit_and_repeat_from_their_seed():
    inputs = graph_fuzz.fuzz_inputs(500, seed=7, repeat=1)
    assert inputs == graph_fuzz.fuzz_inputs(500, seed=7, repeat=1) != graph_fuzz.fuzz_inputs(500, seed=8, repeat=1)
    labels = {i.label for i in inputs}
    for limit in ("most tasks", "deepest chain", "widest fan", "most edges", "an edge past the most",
                  "the longest text", "a text 1 byte too long", "mem tasks writing 1 KiB more"):
        assert f"limit: {limit}" in labels
    outcomes = [graph_fuzz.expected(i, 1) is None for i in inputs]
    assert 0.1 < sum(outcomes) / len(outcomes) < 0.9
    assert any(i.writes > 1 for i in inputs)
    packed = graph_fuzz.pack(inputs[:3])
    assert len(packed) == sum(5 + len(i.data) for i in inputs[:3])


@pytest.mark.parametrize("text", [b"task 4294967296 busy 1\n", b"task 0 busy 18446744073709551617\n",
                                  b"task 0 busy 1\x00\n", b"task\xa00 busy 1\n", b"task 0 busy \xd9\xa3\n"])
def test_texts_that_once_wrapped_or_slipped_through_the_kernel_parser_are_refused(text):
    # sscanf("%u")/("%llu") wrapped huge numbers (2^32 became task 0, 2^64 + 1 became 1), a NUL
    # hid the rest of the text, and the kernel's isspace() takes 0xa0 as a blank.
    with pytest.raises(WqkitError):
        g.TaskGraph.check_text(text, repeat=1)


def test_the_fuzzer_catches_a_parser_that_drops_or_misroutes_an_edge():
    """What the module reads back is compared with Python's parse: an edge dropped, an edge sent
    to another task, a cost or a sample count that differ are each a difference; the successors'
    order is the parser's own and is not."""
    text = g.fork_join(width=3, depth=1).to_text().encode()
    good = graph_fuzz.described(g.TaskGraph.check_text(text, repeat=2), 2)
    assert graph_fuzz.parse_difference(text, 2, good) is None
    reordered = [good[0], "0 busy 10000 3 1 2", *good[2:]]
    assert graph_fuzz.parse_difference(text, 2, reordered) is None
    for mutated in ([good[0], "0 busy 10000 1 2", *good[2:]],             # an edge dropped
                    [good[0], "0 busy 10000 1 2 4", *good[2:]],           # an edge misrouted
                    [good[0], "0 busy 9999 1 2 3", *good[2:]],            # a cost misread
                    ["tasks 5 edges 6 samples 10", *good[1:]],            # the samples of repeat=1
                    good[:-1]):                                           # a task lost
        assert graph_fuzz.parse_difference(text, 2, mutated), mutated
