"""A study on workers started over SSH, as on lab hosts reached by SSH: ``distributed.SSHCluster``
(asyncssh) through an sshd of the test's own on 127.0.0.1 (Debian's openssh-server, installed
by .ci/run and never started as a service; run here as the test's user, on a free port, with
keys the test makes). The scheduler and one worker (one VM slot) run in the SSH sessions; the
client runs the study against that scheduler and pulls every run back."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from wqkit.study.index import read_index

pytestmark = pytest.mark.lab
SSHD = "/usr/sbin/sshd"

STUDY = """
name = "lab_ssh"
seed = 6
boots = 2
[[experiment]]
name = "insert_exec"
params = { nr = 200 }
[factors]
wq_flags = ["percpu", "unbound"]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """An sshd on 127.0.0.1 that lets the test's user in with a key made here: (port, key)."""
    if not Path(SSHD).is_file():
        pytest.skip("no sshd: .ci/run installs Debian's openssh-server (apt-get install openssh-server)")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    shutil.copy(keys / "client.pub", keys / "authorized_keys")
    port = _free_port()
    config = keys / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {keys / 'host'}\n"
                      f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
                      # The keys are under /tmp, which StrictModes refuses (world-writable).
                      "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
    try:
        yield port, keys / "client"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_study_on_an_ssh_cluster(tmp_path, sshd):
    from distributed import SSHCluster

    port, key = sshd
    connect = {"port": port, "known_hosts": None, "client_keys": [str(key)]}
    # -P: the SSH session starts in the home directory, where a wqkit checkout (CI's ~/wqkit) would
    # shadow the installed wqkit on sys.path.
    with SSHCluster(["127.0.0.1", "127.0.0.1"], connect_options=connect, remote_python=f"{sys.executable} -P",
                    scheduler_options={"host": "127.0.0.1", "port": 0, "dashboard_address": "127.0.0.1:0"},
                    worker_options={"host": "127.0.0.1", "nthreads": 2, "resources": {"VM": 1}}) as cluster:
        (tmp_path / "study.toml").write_text(STUDY)
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "wqkit.cli", "study", "run", str(tmp_path / "study.toml"),
                               "--out", str(out), "--scheduler", cluster.scheduler_address],
                              capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    index = read_index(out)
    assert len(index) == 4 and (index["status"] == "ok").all() and (index["bytes_moved"] > 0).all()
    for run_dir in index["run_dir"]:
        meta = json.loads((out / run_dir / "meta.json").read_text())
        assert meta["status"] == "ok" and len(pd.read_parquet(out / run_dir / "samples.parquet")) == 200
    workers = json.loads((out / "study.json").read_text())["sessions"][-1]["workers"]
    assert len(workers) == 1 and next(iter(workers.values()))["missing"] == {}
