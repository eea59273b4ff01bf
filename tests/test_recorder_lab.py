"""The sample recorder under stress in the lab: competing producers, a racing reader, unloading mid-run."""

import numpy as np
import pytest
from conftest import assert_unloaded_cleanly

from wqkit.experiments import kmod
from wqkit.experiments.samples import SAMPLE_DTYPE, SAMPLE_VALID, RecorderStats

pytestmark = pytest.mark.lab
DEBUGFS = "/sys/kernel/debug/wqkit/recorder_stress"


def expected_record(seq: np.ndarray) -> dict:
    """The pattern modules/recorder_stress.c writes for each seq."""
    t0 = (seq.astype(np.uint64) << np.uint64(32)) | np.uint64(0xA5A5A5A5)
    return {"t0": t0, "t1": ~t0, "pid": seq ^ np.uint32(0x5A5A5A5A),
            "cpu_queue": (seq & 0xFFFF).astype(np.uint16), "cpu_exec": (seq >> 16).astype(np.uint16)}


def read_stats(target) -> RecorderStats:
    return RecorderStats.parse(target.run(f"cat {DEBUGFS}/stats", check=True).stdout)


def test_racing_reader_exports_only_complete_records_and_counts_add_up(lab_target, tmp_path):
    lab_target.run("mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
    nr = 20_000
    with kmod.loaded(lab_target, "wq_recorder_stress", {"nr": nr, "producers": 4, "rounds": 200},
                     progress=lambda m: None):
        # Read while 4 producers compete for every slot, then stop them: the counters are final.
        raw = lab_target.copy_back(f"{DEBUGFS}/samples", tmp_path / "samples.bin").read_bytes()
        lab_target.run(f"echo 1 > {DEBUGFS}/stop", check=True)
        stats = read_stats(lab_target)
        assert read_stats(lab_target) == stats, "no producer is left after stop"
    records = np.frombuffer(raw, dtype=SAMPLE_DTYPE)
    assert len(records) == nr
    valid = records[(records["flags"] & SAMPLE_VALID) != 0]
    empty = records[(records["flags"] & SAMPLE_VALID) == 0]
    # Every exported record is complete (its whole pattern), or an all-zero empty slot.
    assert (valid["flags"] == SAMPLE_VALID).all()
    for field, values in expected_record(valid["seq"]).items():
        assert (valid[field] == values).all(), field
    assert (valid["seq"] == np.flatnonzero((records["flags"] & SAMPLE_VALID) != 0)).all()
    assert not empty.tobytes().strip(b"\0")
    # Nothing is lost without being counted: produced = collected + dropped.
    assert stats.exported == len(valid)
    assert stats.produced == len(valid) + stats.dropped
    assert stats.produced > nr, "several producers offered each slot"


def test_unloading_mid_run_leaves_nothing_behind(lab_target):
    before = kmod.log_mark(lab_target)
    ko = kmod.build(lab_target) / "wq_recorder_stress.ko"
    lab_target.run(f"insmod {ko} nr=100000 producers=4 rounds=100000", check=True)
    stats = read_stats(lab_target)
    assert stats.state == "running"
    lab_target.run("rmmod wq_recorder_stress", check=True, timeout=300)
    assert_unloaded_cleanly(lab_target, "wq_recorder_stress", before)
    assert lab_target.run("ls /sys/kernel/debug/wqkit 2>/dev/null").stdout.strip() == ""


def test_modules_loaded_and_unloaded_side_by_side_keep_their_directories(lab_target):
    # Two experiment modules, each with its own copy of the recorder, loaded and unloaded in two
    # loops at once: neither unload may remove the other's directory, nor may a load fail because
    # the other made /sys/kernel/debug/wqkit a moment before.
    build = kmod.build(lab_target)
    before = kmod.log_mark(lab_target)
    loop = ("for i in $(seq 25); do insmod {ko} {args} || echo FAILED-LOAD; sleep 0.05; "
            "test -e /sys/kernel/debug/wqkit/{dir}/stats || echo MISSING-{dir}; rmmod {name} || echo FAILED-UNLOAD; done")
    one = loop.format(ko=build / "wq_recorder_stress.ko", args="nr=10 producers=1 rounds=1", dir="recorder_stress",
                      name="wq_recorder_stress")
    other = loop.format(ko=build / "wq_exec_time_pred.ko", args="nr=10 loops=0", dir="exec_time_pred",
                        name="wq_exec_time_pred")
    result = lab_target.run(f"({one}) > /tmp/one.log 2>&1 & ({other}) > /tmp/other.log 2>&1; wait; "
                            "cat /tmp/one.log /tmp/other.log", timeout=600)
    assert "FAILED" not in result.stdout and "MISSING" not in result.stdout, result.stdout
    log = "\n".join(kmod.log_since(lab_target, before))
    assert "BUG" not in log and "WARNING" not in log
