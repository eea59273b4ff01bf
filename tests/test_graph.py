"""Task graphs: shapes, the module's text format, validation, networkx, STG files, bounds."""

import pytest

from wqkit import graph as g
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
    ("task zero busy 1\n", "line 1: not 'task ID KIND VALUE'"),
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
