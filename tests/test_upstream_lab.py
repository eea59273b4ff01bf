"""The kernel's own lib/test_workqueue.c, built unchanged from Debian's linux-source-7.3 for the lab
kernel, run through wqkit: one row per scope, in its order, and what the kernel really measured."""

import pytest

from wqkit.analysis import load_run
from wqkit.experiments import kmod
from wqkit.runs.kinds import run_kind
from wqkit.runs.spec import release_tuple

pytestmark = pytest.mark.lab


def test_the_kernel_s_own_benchmark_runs_and_each_scope_is_a_row(lab_target, tmp_path):
    kind = run_kind("test_workqueue")
    run = load_run(kind.run({"wq_items": 300}, target=lab_target, out=tmp_path, progress=lambda m: None))
    rows = run.events
    assert run.meta["status"] == "ok" and run.meta["kind"] == "test_workqueue"
    assert rows["scope"].tolist() == list(kind.upstream["scopes"])
    assert (rows["items_per_s"] > 0).all()
    assert ((rows["p50_ns"] <= rows["p90_ns"]) & (rows["p90_ns"] <= rows["p95_ns"])).all()
    assert run.meta["upstream"]["vermagic"].startswith(lab_target.release)
    shard = rows.set_index("scope").loc["cache_shard", "measured_as"]
    assert shard == ("cache_shard" if release_tuple(lab_target.release) >= (7, 1) else "cache")
    assert run.meta["rows"]["measured_as_another"] == ([] if shard == "cache_shard" else ["cache_shard"])
    assert "test_workqueue: running 2 threads, 300 items/thread" in (run.path / "dmesg.txt").read_text()
    assert not kmod.is_loaded(lab_target, "test_workqueue")
