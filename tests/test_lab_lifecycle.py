"""Ways a lab VM ends: panic, boot timeout, Ctrl-C, and the CLI's exit status.

Each test boots its own VM (they kill it) and checks that no QEMU outlives it.
"""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import qemu_processes
from wqkit.errors import LabCrash, LabTimeout
from wqkit.lab import LabSession

pytestmark = pytest.mark.lab
WQKIT = [sys.executable, "-m", "wqkit.cli"]


def test_guest_panic_is_a_clear_error_and_leaves_no_qemu():
    session = LabSession()
    session.start()
    try:
        with pytest.raises(LabCrash, match=r"crashed .*Kernel panic - not syncing"):
            session.run("echo c > /proc/sysrq-trigger")
    finally:
        session.close()
    assert not session.alive
    assert "sysrq" in session.console().lower()
    assert qemu_processes(session.shared_dir) == []


def test_a_boot_that_crashes_before_the_agent_answers_is_retried():
    # The first boot panics on purpose (sysrq) before the agent starts: the session boots again.
    with LabSession(inject_boot_crashes=1) as session:
        assert session.run("true").returncode == 0
        assert len(session.failed_boots) == 1 and "Kernel panic" in session.failed_boots[0]
        kept = session.workdir / "console-boot1.log"
        assert kept.is_file() and "sysrq" in kept.read_text().lower()
        assert "console-boot1.log" in session.failed_boots[0]
    assert qemu_processes(session.shared_dir) == []


def test_a_boot_that_keeps_crashing_gives_up_after_its_retries():
    session = LabSession(inject_boot_crashes=5, boot_retries=1)
    with pytest.raises(LabCrash, match="Kernel panic"):
        session.start()
    assert len(session.failed_boots) == 1
    assert qemu_processes(session.shared_dir) == []


def test_boot_past_its_timeout_kills_the_vm():
    session = LabSession(boot_timeout=2)
    with pytest.raises(LabTimeout, match="did not finish boot within 2 s; VM killed"):
        session.start()
    assert qemu_processes(session.shared_dir) == []


def test_cli_returns_the_guest_command_status():
    proc = subprocess.run([*WQKIT, "lab", "run", "--", "sh", "-c", "echo hello; exit 3"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3
    assert proc.stdout == "hello\n"
    assert "exit status 3" in proc.stderr


def test_ctrl_c_stops_the_vm():
    proc = subprocess.Popen([*WQKIT, "lab", "run", "--", "sleep", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    console = None
    deadline = time.monotonic() + 600
    for line in proc.stderr:
        match = re.search(r"console: (\S+)", line)
        console = Path(match.group(1)) if match else console
        if "ready in" in line or time.monotonic() > deadline:
            break
    assert console is not None
    session_dir = console.parent
    assert qemu_processes(session_dir) != []
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err
    assert qemu_processes(session_dir) == []


def test_sigterm_during_boot_stops_the_vm_before_saying_so():
    proc = subprocess.Popen([*WQKIT, "lab", "run", "--", "sleep", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    console = None
    for line in proc.stderr:
        if match := re.search(r"console: (\S+)", line):
            console = Path(match.group(1))
            break
    assert console is not None
    session_dir = console.parent
    deadline = time.monotonic() + 120
    while not qemu_processes(session_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert qemu_processes(session_dir), "QEMU never started"
    assert "starting script" not in console.read_text()      # still booting: the agent has not started
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "the lab VM was stopped" in err and "Traceback" not in err
    time.sleep(2)
    assert qemu_processes(session_dir) == []
