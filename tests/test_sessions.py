"""Lab session bookkeeping that needs no VM: which console-log directories may be pruned."""

import os

from wqkit.lab import LabSession, vm


def test_pruning_old_console_logs_never_removes_a_live_session(tmp_path, monkeypatch):
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(vm, "KEEP_SESSIONS", 2)
    live = LabSession()            # not started: its directory exists and is in use
    others = [LabSession() for _ in range(4)]
    for session in others:
        session.close()            # each close prunes
    assert live.workdir.is_dir() and live.shared_dir.is_dir()
    # A directory left by a process that still runs (this test's parent here) is kept too.
    foreign = tmp_path / "lab" / f"20200101-000000-{os.getppid()}-1"
    foreign.mkdir()
    vm._prune_sessions()
    assert foreign.is_dir()
    dead = tmp_path / "lab" / "20200101-000000-999999999-1"
    dead.mkdir()
    os.utime(dead, (0, 0))
    vm._prune_sessions()
    assert not dead.exists()
