"""A run's files move from a worker's scratch space to the client's study directory through Dask:
chunked, compressed, every hash checked, nothing left behind on failure."""

import hashlib
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
