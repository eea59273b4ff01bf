"""Studies in the lab: a grid on a 2-worker LocalCluster with a worker killed mid-study, a study
interrupted with Ctrl-C then resumed, and a small A/A study. TCG on 2 cores: --allow-oversubscribe
here only."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import qemu_processes
from wqkit.analysis.study import df_effects, df_study, study_effects
from wqkit.study.index import ATTEMPTS, attempts, levels, read_index

pytestmark = pytest.mark.lab

#: 4 points in each of 2 boots. Each run paces its 300 items 10 ms apart (3 s or more): a run
#: that has just started is still in flight when its worker is killed a second later.
GRID = """
name = "lab_grid"
seed = 4
boots = 2
runs_per_boot = 1
[[experiment]]
name = "insert_exec"
params = { nr = 300, gap_us = 10000 }
[factors]
wq_flags = ["percpu", "unbound"]
max_active = [0, 4]
"""


def _qemus() -> set[int]:
    return set(qemu_processes())


def _study(tmp_path: Path, text: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "study.toml").write_text(text)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "wqkit.cli", "study", "run", str(tmp_path / "study.toml"),
                             "--out", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, out


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def _ok(out: Path) -> int:
    try:
        return int((read_index(out)["status"] == "ok").sum())
    except Exception:  # noqa: BLE001  not written yet, or being replaced
        return 0


def _attempt_lines(out: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in (out / ATTEMPTS).read_text().splitlines()]
    except (OSError, ValueError):  # not written yet, or a line being appended
        return []


def _started_after(out: Path, seen: int) -> list[int]:
    """The processes of the attempts recorded after the first ``seen`` whose run is not ok yet (the newest
    first): runs that have only begun (each takes seconds), so a kill lands before they can finish."""
    try:
        ok = set(read_index(out).query("status == 'ok'")["key"])
    except Exception:  # noqa: BLE001  not written yet, or being replaced
        return []
    return [record["pid"] for record in reversed(_attempt_lines(out)[seen:]) if record["key"] not in ok]


def _process_of_a_run_in_flight(proc: subprocess.Popen, out: Path, first_ok_timeout: float) -> int:
    """Once a run of the study ``proc`` runs is ok, the worker process of a run started after it
    and not ok yet: killed now, it dies in the middle of that run."""
    _wait_for(lambda: _ok(out) >= 1 or proc.poll() is not None, first_ok_timeout, "a first ok run")
    assert proc.poll() is None, proc.communicate()[0]
    seen = len(_attempt_lines(out))
    victim: list[int] = []
    _wait_for(lambda: victim.extend(_started_after(out, seen)) or victim or proc.poll() is not None, 600,
              "a run started after the first ok one")
    assert victim, proc.communicate()[0]
    return victim[0]


def test_a_grid_survives_a_killed_worker_and_nothing_is_lost(tmp_path):
    before = _qemus()
    proc, out = _study(tmp_path, GRID, "--slots", "2", "--allow-oversubscribe")
    # Once a run is ok, kill the worker that starts the next one (its VM is orphaned). A run that began
    # earlier may finish between the look and the kill, and then nothing would be tried again. The
    # study's boots all start at once (2 boots, 2 slots): the next run starts in a guest already up.
    victim = _process_of_a_run_in_flight(proc, out, 600)
    assert _qemus() - before, "the study's VMs are seen running"
    os.kill(victim, signal.SIGKILL)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output
    index = read_index(out)
    assert len(index) == 8 and (index["status"] == "ok").all(), index[["status", "error"]]
    tried = attempts(out)
    assert sum(tried.values()) >= 9 and max(tried.values()) == 2, tried        # the killed run, tried again
    assert (index["attempts"] == index["key"].map(tried)).all()
    # Every run directory is ordinary and says where and how it ran.
    for run_dir in index["run_dir"]:
        meta = json.loads((out / run_dir / "meta.json").read_text())
        assert meta["status"] == "ok" and meta["study"]["slots_on_host"] == 2
        assert meta["host"]["name"] and meta["host"]["vms_running_end"] >= 1 and "loadavg_end" in meta["host"]
        assert meta["requested_parameters"]["nr"] == 300
    # A planned boot's runs share a guest (the killed one's boot is replaced once); no two share one.
    booted = {d: json.loads((out / d / "meta.json").read_text())["lab"]["boot_id"] for d in index["run_dir"]}
    assert (index["boot_id"] == index["run_dir"].map(booted)).all()
    per_boot = index.groupby("boot")["boot_id"].agg(set)
    assert len(per_boot) == 2 and all(1 <= len(ids) <= 2 for ids in per_boot)
    assert not set.intersection(*per_boot), "two planned boots ran in one guest"
    assert _qemus() <= before, "the killed worker's VM was reaped and the others closed"
    table = df_study(out)
    effects = df_effects(table, "max_active")
    assert set(effects["runs"]) == {4} and effects.attrs["baseline"] == 0
    # 2 planned boots a level; the killed one's runs span its guest and the replacement's.
    assert effects["boots"].between(2, 3).all() and (effects["ci_low_ns"] <= effects["value_ns"]).all()


#: A tracer as a study's experiment: the latency tracepoints around insert_exec.
TRACED = """
name = "lab_traced"
seed = 5
boots = 2
[[experiment]]
name = "trace_latency"
params = { during = "insert_exec", nr = 100, engine = "bpftrace" }
[factors]
wq_flags = ["percpu"]
"""


def test_an_interrupted_study_resumes_with_only_what_it_missed(tmp_path):
    text = TRACED
    proc, out = _study(tmp_path, text)
    _wait_for(lambda: _ok(out) >= 1 or proc.poll() is not None, 600, "a first ok run")
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, output
    first = read_index(out)             # consistent: readable, every run ok or pending
    assert set(first["status"]) <= {"ok", "pending"} and (first["status"] == "ok").sum() >= 1
    done = first.loc[first["status"] == "ok", "run_dir"]
    resumed = subprocess.run([sys.executable, "-m", "wqkit.cli", "study", "run", str(tmp_path / "study.toml"),
                              "--out", str(out), "--resume"], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = read_index(out)
    assert (final["status"] == "ok").all() and (final.loc[done.index, "run_dir"] == done).all()
    ok_dirs = [d for d in (out / "runs").iterdir() if not d.name.startswith(".")
               and json.loads((d / "meta.json").read_text())["status"] == "ok"]
    assert len(ok_dirs) == 2, "each run made once: the resume ran only the missing one"
    sessions = pd.Series(json.loads((out / "study.json").read_text())["sessions"])
    assert len(sessions) == 2 and all("ended_at" in s for s in sessions)
    # Each run is a latency trace that saw every one of its experiment's 100 items.
    table = df_study(out)
    assert len(table) == 2 and (table["samples"] == 100).all() and (table["p50"] > 0).all()


#: An A/A study: the same kernel and parameters on both arms, each arm in boots of its own.
A_A = """
name = "lab_aa"
seed = 9
boots = 3
runs_per_boot = 2
[[experiment]]
name = "insert_exec"
params = { nr = 200, serial = true }
[factors]
replicate = ["A", "B"]
"""


def test_an_a_a_study_gives_each_arm_its_own_boots_one_vm_at_a_time(tmp_path):
    before = _qemus()
    proc, out = _study(tmp_path, A_A)
    output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, output
    index = read_index(out)
    assert (index["status"] == "ok").all() and len(index) == 12
    metas = [json.loads((out / d / "meta.json").read_text()) for d in index["run_dir"]]
    # One slot: never more VMs than the study's one, beside those running before it started.
    assert max(m["host"]["vms_running_start"] for m in metas) <= len(before) + 1
    boot_ids = pd.Series([m["lab"]["boot_id"] for m in metas], index=index.index)
    arms = levels(index)["replicate"]
    assert boot_ids.groupby(arms).nunique().to_dict() == {"A": 3, "B": 3}
    assert not set(boot_ids[arms == "A"]) & set(boot_ids[arms == "B"])
    assert (boot_ids.groupby(index["boot"]).nunique() == 1).all(), "a planned boot's two runs share its guest"
    _, _, effects, _ = next(study_effects(df_study(out)))
    compared = effects[effects["level"] == "B"]
    assert (compared["design"] == "independent").all() and (compared["boots"] == 3).all()
    assert np.isfinite(compared[["ratio_low", "ratio_high", "p_value", "p_adjusted"]].to_numpy()).all()
    assert (compared["p_adjusted"] >= compared["p_value"]).all()
    assert effects.attrs["family"] == 3             # p50, p90, p99 of one comparison
