"""The kept lab: `wqkit lab up` boots once, runs of other processes attach to it, `wqkit lab down` stops it."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import qemu_processes
from wqkit.lab import kept

pytestmark = pytest.mark.lab
WQKIT = [sys.executable, "-m", "wqkit.cli"]


def _wqkit(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*WQKIT, *args], capture_output=True, text=True, timeout=timeout)


def _meta(out: Path) -> dict:
    (run_dir,) = [p.parent for p in out.rglob("meta.json")]
    return json.loads((run_dir / "meta.json").read_text())


def test_kept_lab_serves_runs_of_other_processes_then_stops(tmp_path):
    before = set(qemu_processes())
    up = _wqkit("lab", "up")
    assert up.returncode == 0, up.stderr
    try:
        record = kept.running()
        assert record is not None and "kept lab up" in up.stdout
        (vm,) = set(qemu_processes()) - before
        again = _wqkit("lab", "up")
        assert again.returncode == 1 and "already up" in again.stderr

        # Two runs of other processes, one after the other: both on the kept boot, no VM of their own.
        for name in ("first", "second"):
            run = _wqkit("run", "insert_exec", "--nr", "300", "--out", str(tmp_path / name))
            assert run.returncode == 0, run.stderr
            assert "attached to the kept lab" in run.stderr
            meta = _meta(tmp_path / name)
            assert meta["status"] == "ok" and meta["samples"]["collected"] == 300
            # Read out of the kept lab's RAM, which this other process maps too.
            assert meta["samples"]["collected_via"] == "ram"
            assert (meta["lab"]["boot_id"], meta["lab"]["kept"]) == (record["boot_id"], True)
        guest = _wqkit("lab", "run", "--", "cat", "/proc/sys/kernel/random/boot_id")
        assert guest.returncode == 0 and guest.stdout.strip() == record["boot_id"]
        assert set(qemu_processes()) - before == {vm}

        # Other options than the kept lab's boot a lab of their own.
        other = _wqkit("lab", "smoke", "--cpus", "1")
        assert other.returncode == 0 and "attached" not in other.stderr
    finally:
        down = _wqkit("lab", "down", timeout=120)
    assert down.returncode == 0 and "kept lab stopped" in down.stdout
    deadline = time.monotonic() + 60
    while set(qemu_processes()) - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert set(qemu_processes()) - before == set() and kept.running() is None
    assert "no kept lab was up" in _wqkit("lab", "down").stdout
