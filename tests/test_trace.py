"""BPF tracers (bpftrace): worker creation and death, checked against the guest's own task list."""

import json

import pytest

from wqkit.errors import WqkitError
from wqkit.trace import workers


@pytest.mark.lab
def test_creation_tracer_sees_every_new_kworker(lab_target, tmp_path):
    path = workers.trace_workers("creation", delay=20, nr_work_max=24, hold_ms=500, target=lab_target, out=tmp_path,
                                 progress=lambda m: None)
    meta, events = workers.load_trace(path)
    assert meta["status"] == "ok" and meta["lost_events"] == 0 and meta["engine"] == "bpftrace"
    created = events[events["event"] == "CREATE"]
    # Exactly the kworker tasks that appeared in the guest during the run.
    assert sorted(created["pid"].astype(int)) == meta["truth"]["new_kworkers"] and len(created) >= 4
    span_ns = meta["duration_s"] * 1e9
    assert (created["ns"] > 0).all() and (created["ns"] < span_ns).all()
    # Each new worker's first item comes after the flood started.
    flood = int(events.loc[events["event"] == "FLOOD", "ns"].iloc[0])
    assert (events.loc[events["event"] == "FIRST", "ns"] >= flood).all()
    assert sum(meta["histogram_ns_log2"].values()) == len(created)


@pytest.mark.lab
def test_death_tracer_reports_exactly_the_workers_that_went_away(lab_target, tmp_path):
    path = workers.trace_workers("die", trigger="destroy", workers=4, target=lab_target, out=tmp_path,
                                 progress=lambda m: None)
    meta, events = workers.load_trace(path)
    assert meta["status"] == "ok" and meta["probes"][0] == "kprobe:set_worker_dying"
    dead = sorted(events.loc[events["event"] == "DEAD", "pid"].astype(int))
    assert dead == meta["truth"]["kworkers_gone"] and len(dead) >= 1
    assert set(dead) <= set(meta["truth"]["kworkers_created"])
    assert (events.loc[events["event"] == "DEAD", "ns"] > 0).all()
    summary = workers.summary(meta, events)
    json.dumps(summary)   # what --save-json writes
    assert summary["count"] == len(dead) and summary["p50_ns"] > 0


def test_bad_tracer_input_is_a_one_line_error(tmp_path):
    for kwargs, message in (({"engine": "dtrace"}, "unknown engine 'dtrace'"),
                            ({"trigger": "never"}, "unknown trigger 'never'"),
                            ({"delay": -1}, "delay=-1 is out of range")):
        with pytest.raises(WqkitError, match=message):
            workers.trace_workers("creation", target=None, out=tmp_path, **kwargs)
