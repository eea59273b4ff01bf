"""The lab agent started from its bundle (agent_start.py), run here as an ordinary process with
the guest's interpreter (the host's /usr/bin/python3, which the guest runs over 9p)."""

from __future__ import annotations

import json
import marshal
import re
import subprocess
from pathlib import Path

from wqkit.lab import agent_bundle
from wqkit.lab.agent_bundle import GUEST_PYTHON, guest_command
from wqkit.lab.vm import AGENT_PREFIX


def _modules_read_from_files(command: list[str], stdin: str = "") -> tuple[set[str], list[dict]]:
    """The modules ``command`` (a Python command) imported from source or .pyc files on disk, and
    the agent's answers, under ``python -v``."""
    proc = subprocess.run([command[0], "-v", *command[1:]], input=stdin, capture_output=True, text=True,
                          timeout=60, check=True)
    from_files = set(re.findall(r"^import '([\w.]+)' # <_frozen_importlib_external.SourceFileLoader", proc.stderr,
                                re.MULTILINE))
    answers = [json.loads(line[len(AGENT_PREFIX):]) for line in proc.stdout.splitlines() if line.startswith(AGENT_PREFIX)]
    return from_files, answers


def test_the_agent_started_from_its_bundle_reads_no_module_from_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    requests = [{"id": 1, "op": "read", "paths": ["/proc/version"]},
                {"id": 2, "cmd": "echo from a shell", "timeout": 30},                                  # subprocess
                {"id": 3, "socket": str(tmp_path / "no-server"), "line": "x", "timeout": 0.1},         # socket
                {"id": 4, "op": "unload", "name": "wqkit_no_such_module"},                            # ctypes
                {"id": 5, "op": "exit"}]
    from_files, answers = _modules_read_from_files(guest_command(), "".join(json.dumps(r) + "\n" for r in requests))
    # Only what the interpreter reads at its own start, before any line of the agent's starter runs.
    at_start, _ = _modules_read_from_files([GUEST_PYTHON, "-IS", "-c", "pass"])
    assert from_files == at_start, from_files - at_start
    hello, read, shell, ask, unload = answers
    assert hello["ready"] and hello["boot_id"]
    assert read["answers"][0][0].startswith("Linux version") and read["id"] == 1
    assert shell["stdout"] == "from a shell\n" and shell["returncode"] == 0
    assert ask["error"].startswith("no server on") and ask["timed_out"]
    assert unload["errno"] != 0 and unload["id"] == 4


def test_a_bundle_is_rebuilt_when_a_module_s_source_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    bundle = guest_command()[-1]
    modules = marshal.loads(open(bundle, "rb").read())
    assert {"agent", "json", "subprocess", "socket", "ctypes"} <= set(modules)
    assert agent_bundle._is_current(Path(bundle))
    # A module whose source was replaced (an upgraded package) since the bundle was built.
    source = tmp_path / "upgraded.py"
    source.write_text("X = 1\n")
    stat = source.stat()
    modules["upgraded"] = (False, marshal.dumps(compile("X = 1\n", str(source), "exec")), str(source),
                           stat.st_size, stat.st_mtime_ns)
    with open(bundle, "wb") as f:
        f.write(marshal.dumps(modules))
    assert agent_bundle._is_current(Path(bundle))
    source.write_text("X = 2  # upgraded\n")
    assert not agent_bundle._is_current(Path(bundle))
    assert guest_command()[-1] == bundle and agent_bundle._is_current(Path(bundle))
    assert "upgraded" not in marshal.loads(open(bundle, "rb").read())
