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


def test_a_session_of_another_host_is_never_judged_by_a_local_pid(tmp_path, monkeypatch):
    """A cache shared between lab hosts: a session whose host is not this one is neither pruned
    nor reaped here, whatever its PID means on this host."""
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(vm, "KEEP_SESSIONS", 1)
    other = tmp_path / "lab" / "20200101-000000-999999999-1"
    other.mkdir(parents=True)
    (tmp_path / "lab" / "20990101-000000-999999999-2").mkdir()      # the newest, kept anyway
    (other / vm.HOST_FILE).write_text("another-host\n")
    (other / vm.PGID_FILE).write_text(f"{os.getpid()}\n")      # would be this test's own group here
    os.utime(other, (0, 0))
    assert vm.reap_orphans() == [] and (other / vm.PGID_FILE).is_file()
    vm._prune_sessions()
    assert other.is_dir()
    (other / vm.HOST_FILE).write_text(vm.socket.gethostname() + "\n")      # ours, and its owner is gone
    (other / vm.PGID_FILE).unlink()
    os.utime(other, (0, 0))
    vm._prune_sessions()
    assert not other.exists()
