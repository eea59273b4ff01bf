"""The kernel's own benchmark modules as runs: declared once, their lines parsed, and a scope their
kernel does not know marked with the one it measured instead."""

import pytest

from wqkit.experiments.upstream import measured_as, parse_lines
from wqkit.runs.kinds import run_kind, upstream_kinds

#: test_workqueue's lines as a 6.12 guest logged them (dmesg), around other lines.
LOG = """[   20.100000] test_workqueue: running 2 threads, 2000 items/thread
[   21.000000] test_workqueue:   cpu              41234 items/sec\tp50=9811\tp90=15012\tp95=20300 ns
[   21.500000] test_workqueue:   smt              40011 items/sec\tp50=9900\tp90=15100\tp95=21000 ns
[   22.000000] virtio_net virtio0: not ours
[   22.100000] test_workqueue:   cache_shard      39876 items/sec\tp50=10011\tp90=15500\tp95=22000 ns
[   22.600000] test_workqueue:   cache            39000 items/sec\tp50=10100\tp90=15600\tp95=22100 ns
[   23.100000] test_workqueue:   numa             38000 items/sec\tp50=10200\tp90=15700\tp95=22200 ns
[   23.600000] test_workqueue:   system           37000 items/sec\tp50=10300\tp90=15800\tp95=22300 ns""".splitlines()


def test_the_benchmark_is_a_declared_run_kind():
    kind = run_kind("test_workqueue")
    assert kind in upstream_kinds().values() and not kind.tracer and kind.experiment is None
    assert {p.name: p.default for p in kind.params} == {"nr_threads": 0, "wq_items": 50000}
    assert kind.upstream["source"] == "lib/test_workqueue.c" and kind.upstream["series"] == "7.3"
    with pytest.raises(Exception, match="wq_items=0 is out of range"):
        kind.split({"wq_items": 0})


def test_each_scope_line_is_a_row_of_integers():
    rows = parse_lines(run_kind("test_workqueue"), LOG, "6.12.95+deb12-amd64")
    assert rows["scope"].tolist() == list(run_kind("test_workqueue").upstream["scopes"])
    assert rows.loc[0, ["items_per_s", "p50_ns", "p90_ns", "p95_ns"]].tolist() == [41234, 9811, 15012, 20300]
    assert str(rows["p95_ns"].dtype) == "int64"


@pytest.mark.parametrize("scope, release, measured", [
    ("cache_shard", "6.12.95+deb12-amd64", "cache"),      # 6.12 matches "cache" as a prefix
    ("cache_shard", "7.3.4+deb13-amd64", "cache_shard"),
    ("numa", "6.12.95+deb12-amd64", "numa"),
    ("cpu", "6.1.0-57-amd64", ""),                          # no affinity scopes at all
])
def test_a_scope_the_kernel_lacks_is_marked_with_what_it_measured(scope, release, measured):
    assert measured_as(scope, release) == measured
