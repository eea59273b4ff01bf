"""Root only where it is needed: the lab, a run and the monitor work as an ordinary user,
and set-up asks for root (sudo) for its apt step alone.

Run as root (as CI is), the tests create an ordinary user and act as it with runuser;
run as an ordinary user, they act as that user directly.
"""

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from wqkit.lab.kernel import LabKernel, kernels_dir
from wqkit.paths import SOURCE_DIR

USER = "wqkit-ci"

SESSION = """
import json, os, sys
from pathlib import Path
from wqkit.inspect.lab import LabInspector
from wqkit.lab import LabSession
from wqkit.experiments.runner import run_experiment
from wqkit.target import LabTarget
with LabSession() as lab:
    target = LabTarget(session=lab)
    run = run_experiment("insert_exec", {"nr": 200}, target=target, out=Path(sys.argv[1]), progress=lambda m: None)
    snapshot = LabInspector(target).snapshot()
    print(json.dumps({"uid": os.getuid(), "run": str(run), "guest_uid": lab.run("id -u").stdout.strip(),
                      "workqueues": [wq.name for wq in snapshot.workqueues], "accel": lab.accel}))
"""


class OrdinaryUser:
    """Who runs the commands, with a home and a wqkit cache of their own."""

    def __init__(self, home: Path, name: str | None) -> None:
        self.home, self.name = home, name

    def run(self, cmd: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        env = {"HOME": str(self.home), "PATH": os.environ["PATH"], **(env or {})}
        prefix = ["runuser", "-u", self.name, "--", "env", *[f"{k}={v}" for k, v in env.items()]] \
            if self.name else ["env", *[f"{k}={v}" for k, v in env.items()]]
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def ordinary_user():
    """Root: a second, ordinary user (runuser). An ordinary user: the suite's own user, with
    a fresh home. Either way the stock lab kernel is there already, as `make setup` leaves it
    for that user: hard links to the suite's provisioned kernel (no copy of 600 MB)."""
    # Not under pytest's own temporary directory, which only its owner may enter.
    home = Path(tempfile.mkdtemp(prefix="wqkit-ci-home-"))
    name = None
    opened: list[tuple[Path, int]] = []
    if os.geteuid() == 0:
        name = USER
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
        # The user must reach the source tree and its venv (a clone may live under /root).
        for directory in [*reversed(SOURCE_DIR.parents), SOURCE_DIR]:
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                opened.append((directory, mode))
                directory.chmod(mode | stat.S_IXOTH)
    cache = home / ".cache" / "wqkit"
    (cache / "kernels").mkdir(parents=True)
    release = LabKernel.stock().release
    link = subprocess.run(["cp", "-al", str(kernels_dir() / release), str(cache / "kernels")],
                          capture_output=True)
    if link.returncode:     # another file system: copy
        shutil.copytree(kernels_dir() / release, cache / "kernels" / release, symlinks=True)
    if name:
        uid, gid = pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid
        for path in (home, home / ".cache", cache, cache / "kernels"):
            os.chown(path, uid, gid)
    yield OrdinaryUser(home, name)
    for directory, mode in opened:
        directory.chmod(mode)
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.lab
def test_lab_run_and_monitor_as_an_ordinary_user(ordinary_user):
    out = ordinary_user.home / "runs"
    proc = ordinary_user.run([sys.executable, "-c", SESSION, str(out)], timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["uid"] != 0 and seen["guest_uid"] == "0"     # an ordinary user outside, root in the guest
    meta = json.loads((Path(seen["run"]) / "meta.json").read_text())
    assert meta["status"] == "ok" and meta["samples"]["collected"] == 200
    assert Path(seen["run"]).stat().st_uid == seen["uid"]
    assert "events" in seen["workqueues"] and "kblockd" in seen["workqueues"]


def fake_bin(scratch: Path, with_sudo: bool) -> Path:
    """A PATH directory with the system's commands but no sudo (or a fake one), and a
    dpkg-query that reports every package missing."""
    bin_dir = scratch / "bin"
    bin_dir.mkdir(parents=True)
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for tool in Path(directory).iterdir() if Path(directory).is_dir() else ():
            if tool.name != "sudo" and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    (bin_dir / "dpkg-query").unlink(missing_ok=True)
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    if with_sudo:
        (bin_dir / "sudo").write_text(f'#!/bin/sh\necho "$*" >> {scratch}/sudo.log\n')
    for script in ("dpkg-query", "sudo"):
        if (bin_dir / script).exists():
            (bin_dir / script).chmod(0o755)
    scratch.chmod(0o777)
    return bin_dir


def test_setup_without_root_or_sudo_names_the_missing_packages(ordinary_user):
    bin_dir = fake_bin(ordinary_user.home / "no-sudo", with_sudo=False)
    proc = ordinary_user.run(["bash", str(SOURCE_DIR / "scripts" / "setup.sh")], env={"PATH": str(bin_dir)},
                             timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs root and sudo is not installed" in lines[0]
    assert "qemu-system-x86" in lines[0] and "bpftrace" in lines[0]


def test_setup_as_an_ordinary_user_uses_sudo_for_the_apt_step_only(ordinary_user):
    scratch = ordinary_user.home / "fake-sudo"
    bin_dir = fake_bin(scratch, with_sudo=True)
    proc = ordinary_user.run(["bash", str(SOURCE_DIR / "scripts" / "setup.sh")], env={"PATH": str(bin_dir)},
                             timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "running it with sudo (the only step that needs root)" in proc.stdout
    asked = (scratch / "sudo.log").read_text().splitlines()
    assert asked and all(line.split()[0] in ("apt-get", "tee", "env") for line in asked), asked
    assert any("apt-get install" in line and "qemu-system-x86" in line for line in asked)
