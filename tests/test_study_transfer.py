"""A run's files move from a worker's scratch space to the client's study directory through Dask:
chunked, compressed, every hash checked, nothing left behind on failure."""

import hashlib
import json
import os
import re
import threading
import time

import pytest
from distributed import Client, LocalCluster

from wqkit.errors import WqkitError
from wqkit.study import transfer


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as dask:
        yield dask


def _worker(client) -> str:
    return next(iter(client.scheduler_info()["workers"]))


def _run_dir(root, name="insert_exec-20261206-190000"):
    run = root / name
    (run / "sub").mkdir(parents=True)
    (run / "meta.json").write_text('{"status": "ok"}\n')
    (run / "samples.parquet").write_bytes(os.urandom(5000) + bytes(20000))
    (run / "sub" / "empty.txt").write_bytes(b"")
    return run


def _tree(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_run_arrives_whole_in_chunks_and_a_second_of_the_same_name_beside_it(client, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "CHUNK", 4096)        # several pulls per file
    run = _run_dir(tmp_path / "scratch")
    described = transfer.describe(run)
    assert described["files"]["sub/empty.txt"] == [0, hashlib.sha256(b"").hexdigest()]
    runs = tmp_path / "out" / "runs"
    final, moved = transfer.receive(client, _worker(client), described, runs)
    assert final == runs / run.name and _tree(final) == _tree(run)
    # Compressed: the 20000 zero bytes cost almost nothing.
    assert 5000 < moved < 5000 + 20000
    again, _ = transfer.receive(client, _worker(client), described, runs)
    assert again == runs / f"{run.name}-2" and _tree(again) == _tree(run)
    assert sorted(p.name for p in runs.iterdir()) == [run.name, f"{run.name}-2"]
    client.submit(transfer.discard, described["path"], workers=[_worker(client)]).result()
    assert not run.exists()


def test_a_changed_file_or_a_gone_worker_is_an_error_and_leaves_nothing(client, tmp_path):
    run = _run_dir(tmp_path / "scratch")
    described = transfer.describe(run)
    (run / "meta.json").write_text('{"status": "failed"}\n')
    runs = tmp_path / "out" / "runs"
    with pytest.raises(WqkitError, match="meta.json arrived with another hash than its worker's"):
        transfer.receive(client, _worker(client), described, runs)
    with pytest.raises(WqkitError, match="lost with its worker tcp://127.0.0.1:9"):
        transfer.receive(client, "tcp://127.0.0.1:9", described, runs)
    bad = {**described, "files": {"../escape": [0, hashlib.sha256(b"").hexdigest()]}}
    with pytest.raises(WqkitError, match="refused file name '../escape'"):
        transfer.receive(client, _worker(client), bad, runs)
    assert list(runs.iterdir()) == [] and not (tmp_path / "out" / "escape").exists()


def test_a_pull_from_a_worker_that_leaves_fails_at_once(tmp_path, monkeypatch):
    # A worker killed just after its run finished: the pull pinned to it would wait for it until
    # PULL_TIMEOUT_S (a cluster study once stalled 300 s so). Here the worker's one thread is busy
    # when the pull is queued behind it, then the worker closes.
    monkeypatch.setattr(transfer, "PULL_TIMEOUT_S", 120.0)
    run = _run_dir(tmp_path / "scratch")
    described = transfer.describe(run)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as dask:
        leaving = next(iter(cluster.workers.values()))
        busy = dask.submit(time.sleep, 3, workers=[leaving.address], pure=False)
        threading.Timer(1.0, lambda: dask.sync(leaving.close)).start()
        start = time.monotonic()
        with pytest.raises(WqkitError, match=f"pulling .* from {re.escape(leaving.address)} failed .*left the cluster"):
            transfer.receive(dask, leaving.address, described, tmp_path / "out" / "runs")
        assert time.monotonic() - start < 30
        busy.cancel()
    assert list((tmp_path / "out" / "runs").iterdir()) == []


class _FakeGuest:
    alive = True
    session = type("Session", (), {"boot_id": "fake-boot"})()


def _runs_reusing_one_name(params, target, out, annotations, **_):
    """A run kind whose every run takes the same scratch name once the last one's copy is gone:
    what two short runs started in the same second get (RunDirectory's names have a 1 s stamp)."""
    path = out / "insert_exec-20261207-100000"
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:   # the client pulls it, then its worker deletes it
        time.sleep(0.05)
    path.mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps({"study": annotations["study"]}))
    return path


def test_two_runs_of_a_boot_with_the_same_scratch_name_are_both_recorded(tmp_path, monkeypatch):
    # A study once ended with a run pending and no error: its boot's next run reused the
    # scratch name of the run just pulled and deleted, and was taken for that run again.
    from wqkit import __version__
    from wqkit.study import engine, worker
    from wqkit.study.index import read_index
    from wqkit.study.spec import read_study

    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(engine, "check_kernels", lambda study: None)
    monkeypatch.setattr(engine, "reap_orphans", lambda: [])
    monkeypatch.setattr(engine, "host_facts", lambda kernels: {"host": "here", "missing": {}, "wqkit": __version__})
    monkeypatch.setattr(worker, "_boot", lambda point, study, log: _FakeGuest())
    # Nothing received before this task: and the worker's own client (get_client), in this process,
    # would outlive the cluster and fail loudly at exit.
    monkeypatch.setattr(worker, "received_runs", lambda digest: set())
    monkeypatch.setattr(worker, "run_kind", lambda name: type("Kind", (), {"run": staticmethod(_runs_reusing_one_name)}))
    spec = tmp_path / "s.toml"
    spec.write_text('name = "same_name"\nseed = 1\nboots = 2\nruns_per_boot = 2\n'
                    '[[experiment]]\nname = "insert_exec"\nparams = { nr = 10 }\n')
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                      resources={"VM": 1}) as cluster:
        index = engine.run_study(read_study(spec), tmp_path / "out", engine.ClusterChoice(scheduler=cluster.scheduler_address),
                                 progress=lambda line: None)
    assert (index["status"] == "ok").all() and len(index) == 4
    orders = sorted(json.loads((tmp_path / "out" / d / "meta.json").read_text())["study"]["order"]
                    for d in read_index(tmp_path / "out")["run_dir"])
    assert orders == sorted(index["order"])
