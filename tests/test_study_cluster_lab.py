"""A study on a cluster that shares no disk with its client, with real processes: a scheduler
started with ``dask scheduler`` on 127.0.0.1, and ``wqkit study worker`` run as a second Unix
user (``wqkit-worker``, made by .ci/run) whose home, cache and scratch space are its own and
who cannot write the client's ``--out``. One worker is killed mid-run; its run is retried and
every run directory ends up on the client, pulled from the workers.

The worker user's cache links to the client's provisioned kernels (read-only, as a lab host's
own provisioned kernels would be); everything else it writes is its own.
"""

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client

from test_study_lab import GRID, _process_of_a_run_in_flight, _wait_for
from wqkit.paths import cache_dir
from wqkit.study.index import attempts, read_index

pytestmark = pytest.mark.lab
WORKER_USER = "wqkit-worker"


def _as_worker(*command: str) -> list[str]:
    return ["sudo", "-n", "-u", WORKER_USER, "-H", "env", "PYTHONDONTWRITEBYTECODE=1", *command]


def _worker_processes(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-u", WORKER_USER, "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


@pytest.fixture
def worker_home() -> Path:
    try:
        home = Path(pwd.getpwnam(WORKER_USER).pw_dir)
    except KeyError:
        pytest.skip(f"no second user {WORKER_USER} (.ci/run makes it: useradd --create-home {WORKER_USER})")
    subprocess.run(_as_worker("sh", "-c", f"mkdir -p ~/.cache/wqkit && ln -sfn {cache_dir() / 'kernels'} "
                                          "~/.cache/wqkit/kernels"), check=True)
    return home


@pytest.fixture
def scheduler(tmp_path):
    info = tmp_path / "scheduler.json"
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: info.is_file() and info.stat().st_size, 60, "the scheduler's file")
        yield json.loads(info.read_text())["address"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def workers(worker_home, scheduler):
    proc = subprocess.Popen(_as_worker(sys.executable, "-m", "wqkit.cli", "study", "worker", scheduler,
                                       "--slots", "2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with Client(scheduler) as client:
            client.wait_for_workers(2, timeout=120)
        yield proc
    finally:
        proc.terminate()                # sudo relays it to the workers' nanny
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        subprocess.run(["sudo", "-n", "pkill", "-KILL", "-u", WORKER_USER, "-f", "dask_worker|qemu-system"])


def test_a_study_on_workers_of_another_user_without_a_shared_disk(tmp_path, worker_home, scheduler, workers):
    (tmp_path / "study.toml").write_text(GRID)
    out = tmp_path / "out"
    out.mkdir()
    assert subprocess.run(_as_worker("test", "-w", str(out))).returncode != 0, "the workers cannot write --out"
    proc = subprocess.Popen([sys.executable, "-m", "wqkit.cli", "study", "run", str(tmp_path / "study.toml"),
                             "--out", str(out), "--scheduler", scheduler],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = _process_of_a_run_in_flight(proc, out, 900)
    subprocess.run(["sudo", "-n", "kill", "-KILL", str(victim)], check=True)
    output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, output
    index = read_index(out)
    assert len(index) == 8 and (index["status"] == "ok").all(), index[["status", "error"]]
    tried = attempts(out)
    assert sum(tried.values()) >= 9 and max(tried.values()) == 2, tried      # the killed run, tried again
    session = json.loads((out / "study.json").read_text())["sessions"][-1]
    assert {w["user"] for w in session["workers"].values()} == {WORKER_USER} and len(session["workers"]) >= 2
    # Every run directory is on the client, whole, made by the other user's workers.
    for _, row in index.iterrows():
        run = out / row["run_dir"]
        meta = json.loads((run / "meta.json").read_text())
        assert meta["status"] == "ok" and meta["study"]["point"] == row["point"]
        assert len(pd.read_parquet(run / "samples.parquet")) == 300 and row["bytes_moved"] > 0
        assert run.stat().st_uid == os.getuid()
    assert len(list((out / "runs").iterdir())) == 8
    # The workers' scratch copies are gone once the study ends, the killed worker's too (their logs stay).
    scratch = worker_home / ".cache" / "wqkit" / "study-scratch" / session_digest(out)
    left = subprocess.run(_as_worker("find", str(scratch), "-mindepth", "1", "-maxdepth", "1"),
                          capture_output=True, text=True)
    assert left.returncode == 0 and left.stdout.split() == [str(scratch / "workers")], left.stdout + left.stderr
    assert not _worker_processes("qemu-system"), "the killed worker's VM was reaped, the others closed"


def session_digest(out: Path) -> str:
    return json.loads((out / "study.json").read_text())["digest"]
