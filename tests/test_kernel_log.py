"""Kernel log marks (what a module logged since a mark, also once the ring buffer has wrapped), the
kernel log's records as dmesg prints them, and the vermagic check before loading."""

import pytest

from wqkit.errors import WqkitError
from wqkit.experiments import kmod
from wqkit.lab import agent


class RingBufferTarget:
    """A target whose kernel log is a ring buffer of ``size`` numbered records, as /dev/kmsg gives them."""

    def __init__(self, size: int) -> None:
        self.size, self.records, self.seq = size, [], 0

    def log(self, message: str) -> None:
        self.seq += 1
        self.records = (self.records + [(self.seq, f"[{self.seq / 1e6:12.6f}] {message}")])[-self.size:]

    def kernel_log(self, since: int = 0):
        return [text for seq, text in self.records if seq >= since], self.seq + 1


def test_the_log_since_a_mark_is_what_came_after_it():
    target = RingBufferTarget(size=100)
    target.log("boot")
    mark = kmod.log_mark(target)
    for _ in range(3):
        target.log("wq_fixture: ran 200 work items on each workqueue")
    assert len(kmod.log_since(target, mark)) == 3


def test_a_ring_buffer_that_wrapped_past_the_mark_keeps_only_newer_lines():
    target = RingBufferTarget(size=100)
    for _ in range(100):
        target.log("wq_fixture: ran 200 work items on each workqueue")
    mark = kmod.log_mark(target)
    for _ in range(150):
        target.log("wq_fixture: ran 200 work items on each workqueue")
    target.log("wq_smoke: nr=0 is out of range (1..100000)")
    since = kmod.log_since(target, mark)
    assert len(since) == 100 and since[-1].endswith("nr=0 is out of range (1..100000)")


def test_an_empty_log_marks_its_start():
    target = RingBufferTarget(size=10)
    mark = kmod.log_mark(target)
    target.log("first")
    assert [line.split("] ")[1] for line in kmod.log_since(target, mark)] == ["first"]


def test_kmsg_records_read_as_dmesg_prints_them():
    """Records as /dev/kmsg gives them (prefix, escaped message, dictionary lines)."""
    seq, text = agent.kmsg_record(b"6,1234,2469734,-;clocksource: Switched to clocksource tsc\n SUBSYSTEM=x\n")
    assert (seq, text) == (1234, "[    2.469734] clocksource: Switched to clocksource tsc")
    seq, text = agent.kmsg_record(b"3,7,126825058,c;graph: 'caf\\xc3\\xa9' \\x5cx41\\x09\\x7f\\x01\\x0anext\n")
    assert (seq, text) == (7, "[  126.825058] graph: 'caf\u00e9' \\x41\t\\x7f\\x01\n               next")


def test_a_module_built_for_another_kernel_is_refused(tmp_path):
    ko = tmp_path / "wq_smoke.ko"
    ko.write_bytes(b"\x7fELF...\0license=GPL\0vermagic=6.12.95+deb12-amd64 SMP preempt mod_unload modversions \0")
    running = type("Target", (), {"name": "local", "release": "6.12.95+deb12-amd64"})()
    kmod.check_built_for(ko, running)
    other = type("Target", (), {"name": "local", "release": "6.1.0-57-amd64"})()
    with pytest.raises(WqkitError, match=r"wq_smoke\.ko was built for kernel '6\.12\.95\+deb12-amd64', but the "
                                         r"local target runs '6\.1\.0-57-amd64': refusing to load it"):
        kmod.check_built_for(ko, other)
    ko.write_bytes(b"not a module")
    with pytest.raises(WqkitError, match="no vermagic"):
        kmod.check_built_for(ko, running)


def test_the_agents_file_operations_answer_or_name_the_error(tmp_path):
    # What LocalTarget runs in-process and the lab's agent in the guest, on ordinary files.
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "nr").write_text("1000\n")
    (tmp_path / "params" / "cpu").write_text("-1\n")
    control = tmp_path / "control"
    control.write_text("")
    missing = str(tmp_path / "missing")
    assert agent.file_op({"op": "read", "paths": [str(control), missing]})["answers"] == \
        [["", None], [None, f"{missing}: No such file or directory"]]
    assert agent.file_op({"op": "exists", "paths": [str(control), missing]})["answers"] == \
        [[True, None], [False, f"{missing}: No such file or directory"]]
    assert agent.file_op({"op": "size", "paths": [str(tmp_path / "params" / "cpu"), missing]})["answers"] == \
        [[3, None], [None, f"{missing}: No such file or directory"]]
    assert agent.file_op({"op": "list", "path": str(tmp_path)}) == {"names": ["control", "params"]}
    assert agent.file_op({"op": "list", "path": missing})["errno"] == 2
    assert agent.file_op({"op": "read_dir", "path": str(tmp_path / "params")}) == \
        {"files": {"cpu": "-1\n", "nr": "1000\n"}}
    big = "task 1 busy 10\n" * 20000
    assert agent.file_op({"op": "write", "path": str(control), "text": big}) == {}
    assert control.read_text() == big
    assert agent.file_op({"op": "write", "path": missing, "text": "1"})["errno"] == 2
    assert agent.file_op({"op": "write", "path": missing, "text": "", "create": True}) == {}
    assert agent.file_op({"op": "exists", "paths": [missing]})["answers"] == [[True, None]]
    assert "unknown operation 'remove'" in agent.file_op({"op": "remove", "path": missing})["error"]
