"""Bad input on the command line: a one-line error and a non-zero exit, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wqkit.errors import WqkitError
from wqkit.target import LocalTarget

WQKIT = [sys.executable, "-m", "wqkit.cli"]


@pytest.mark.parametrize("args, message", [
    (["lab", "run", "--kernel", "9.9.9", "--", "true"], "unknown lab kernel '9.9.9'"),
    (["lab", "run", "--"], "give a command after --"),
    (["lab", "run", "--cpus", "0", "--", "true"], "cpus=0 is not a number of lab CPUs (1..64)"),
    (["module", "wq_smoke", "nr=0"], "nr=0 is out of range (1..100000)"),
    (["module", "wq_smoke", "nr"], "module parameter 'nr' is not NAME=VALUE"),
    (["module", "wq_smoke", "depth=3"], "unknown parameter 'depth'"),
    (["module", "no_such_module"], "unknown module 'no_such_module'"),
])
def test_bad_input_is_one_line_and_non_zero(args, message):
    proc = subprocess.run([*WQKIT, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"wqkit: error: {proc.stderr.strip()[len('wqkit: error: '):]}"]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_local_target_refuses_a_kernel_without_modules_or_works():
    if Path("/proc/modules").exists():
        if os.geteuid() != 0:
            with pytest.raises(WqkitError, match="--target local needs root"):
                LocalTarget()
            return
        # Checked against the kernel's own record, not the function wqkit calls.
        assert LocalTarget().release == Path("/proc/sys/kernel/osrelease").read_text().strip()
        return
    # Our machines: CONFIG_MODULES is off.
    with pytest.raises(WqkitError, match=r"has no module support \(CONFIG_MODULES is off\); use --target lab"):
        LocalTarget()
    proc = subprocess.run([*WQKIT, "module", "wq_smoke", "--target", "local"], capture_output=True, text=True)
    assert proc.returncode == 1 and "no module support" in proc.stderr and "Traceback" not in proc.stderr


def test_trace_workers_bad_input(tmp_path):
    bad_json, not_summary = tmp_path / "bad.json", tmp_path / "other.json"
    bad_json.write_text("{")
    not_summary.write_text('{"count": 3}')
    for args, message in ((["--load-json", str(tmp_path / "missing.json")], "missing.json: no such file"),
                          (["--load-json", str(bad_json)], "bad.json: not JSON"),
                          (["--load-json", str(not_summary)], "not a summary saved by --save-json"),
                          (["--type-measurement", "die", "--trigger", "sometimes"], "invalid choice: 'sometimes'")):
        proc = subprocess.run([*WQKIT, "trace", "workers", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr, args


@pytest.mark.parametrize("args, message", [
    (["monitor", "--core", "/nonexistent.vmcore"], "/nonexistent.vmcore: no such vmcore"),
    (["monitor", "--core", __file__], "not a readable vmcore"),
    (["monitor", "-i", "-1", "--core", __file__], "must not be negative"),
    (["monitor", "-s", "SOMETIMES"], "invalid choice"),
])
def test_monitor_bad_input(args, message):
    proc = subprocess.run([*WQKIT, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
