"""The monitor's output on a snapshot recorded in the lab (wq_fixture loaded, 25 items run)."""

import copy
import io
import json
import re
import time
from pathlib import Path

import pytest

from wqkit.errors import WqkitError
from wqkit.inspect.model import Snapshot
from wqkit.inspect.monitor import monitor
from wqkit.inspect.text import scenario_lines

RECORDED = json.loads((Path(__file__).parent / "data" / "snapshot-6.12-tcg.json").read_text())
POOL = r"pool\[\d{2}\] flags=0x[0-9a-f]{2} ref=[ \d]{3} nice=[ \-\d]{3} idle/workers=[ \d]{3}/[ \d]{3} " \
       r"nr_running=\(int\)\d+    (cpu=[ \d]{3}|cpus=[0-9a-f]{8})"


@pytest.fixture
def snap() -> Snapshot:
    return Snapshot.from_dict(copy.deepcopy(RECORDED))


def run(snapshots, **kw) -> str:
    out = io.StringIO()
    queue = list(snapshots)
    monitor(lambda: queue.pop(0), out, **kw)
    return out.getvalue()


def test_recorded_snapshot_round_trips(snap):
    """The recorded snapshot comes back as it was; fields added since it was recorded (affinity
    scopes) come back empty."""
    dumped = json.loads(json.dumps(snap.to_dict()))
    assert dumped.pop("scopes") == []
    for wq in dumped["workqueues"]:
        assert (wq.pop("affinity_scope"), wq.pop("affinity_strict")) == (None, None)
    assert dumped == RECORDED
    assert snap.kernel_release == "6.12.95+deb12-amd64"


def test_fixture_workqueues_have_their_known_shape(snap):
    percpu, unbound, ordered = (snap.workqueue(f"wqkit_fx_{k}") for k in ("percpu", "unbound", "ordered"))
    assert (percpu.type, percpu.max_active, percpu.flag_names) == ("percpu", 7, [])
    assert unbound.type == "unbound" and unbound.max_active == 7
    assert {"unbound", "highpri"} <= set(unbound.flag_names)
    assert ordered.type == "ordered" and ordered.max_active == 1 and "ordered" in ordered.flag_names
    assert percpu.started == percpu.completed == unbound.started == ordered.completed == 25


def test_normal_scenario_keeps_the_seed_layout(snap):
    text = run([snap], names=["events"])
    lines = text.splitlines()
    assert lines[0] == "Iteration: 0 " + "-" * 50
    assert lines[1] == "events".ljust(24)
    assert re.fullmatch(r" ├─flags=0x00 type=percpu   ", lines[2])
    assert re.fullmatch(r" ├─nr_active= {7}\d", lines[3]) and re.fullmatch(r" ├─nr_activev2= {7}0", lines[4])
    assert re.fullmatch(r" ├─started= *\d+ completed= *\d+ ", lines[5])
    assert lines[6] == "-" * 50


def test_verbose_lists_pools_and_workers(snap):
    lines = run([snap], names=["kblockd"], verbose=True).splitlines()
    pools = [ln for ln in lines if ln.startswith(" ├─pool[")]
    assert len(pools) == len({p.pool_id for p in snap.workqueue("kblockd").pwqs})
    assert all(re.fullmatch(r" ├─" + POOL, ln) for ln in pools)
    workers = [ln for ln in lines if ln.startswith(" ├─kblockd[PID=")]
    assert len(workers) == sum(w.desc == "kblockd" for w in snap.workers)
    assert all(re.fullmatch(r" ├─kblockd\[PID=\d+, ID=\d+\] cpu=[ \d]{3} Running=(True|False) ", ln)
               for ln in workers)


def test_every_workqueue_of_a_name_is_shown(snap):
    # 6.12 stable kernels have two "events" workqueues (system_wq and system_percpu_wq).
    text = run([snap], names=["events"])
    assert text.count("\nevents ") == sum(wq.name == "events" for wq in snap.workqueues)


def test_all_poolworkqueues_lists_every_pool(snap):
    lines = run([snap], scenario="ALL_POOLWORKQUEUES").splitlines()
    assert lines[-1] == "Iteration: 0"
    assert len(lines) - 1 == len(snap.pools)
    assert all(re.fullmatch(POOL, ln) for ln in lines[:-1])
    active = run([snap], scenario="ALL_POOLWORKQUEUES", active_only=True).splitlines()[:-1]
    assert len(active) == sum(p.active for p in snap.pools)


def test_per_cpu_scenarios_add_up(snap):
    lines = scenario_lines(snap, "TOTAL_WORKERS_PER_CPU", snap.workqueues)
    per_cpu = {int(m.group(1)): int(m.group(2)) for m in (re.match(r"cpu= *(\d+) workers= *(\d+)", ln)
                                                           for ln in lines) if m}
    assert per_cpu == {cpu: sum(p.nr_workers for p in snap.pools if p.cpu == cpu) for cpu in per_cpu}
    assert len(scenario_lines(snap, "TOTAL_WORK_ITEMS_PER_CPU", snap.workqueues)) == len(per_cpu)
    assert len(scenario_lines(snap, "TOTAL_WORKERS_FROM_WQ_PER_CPU", [snap.workqueue("events")])) == len(per_cpu)


def test_rates_between_two_snapshots(snap):
    later = Snapshot.from_dict(copy.deepcopy(RECORDED))
    later.time = snap.time + 2.0
    pwq = later.workqueue("wqkit_fx_percpu").pwqs[0]
    pwq.stats = pwq.stats._replace(started=pwq.stats.started + 100, completed=pwq.stats.completed + 100)
    text = run([snap, later], names=["wqkit_fx_percpu"], interval=0.01, max_iterations=2)
    assert re.search(r"rate started= +50\.0/s completed= +50\.0/s", text)
    lines = run([snap, later], names=["wqkit_fx_percpu"], interval=0.01, max_iterations=2, fmt="json").splitlines()
    assert json.loads(lines[1])["rates"]["wqkit_fx_percpu"]["started_per_s"] == 50.0


def test_json_and_csv_formats(snap):
    data = json.loads(run([snap], names=["events", "kblockd"], fmt="json"))
    expected = [wq.name for wq in snap.workqueues if wq.name in ("events", "kblockd")]
    assert [w["name"] for w in data["workqueues"]] == expected and data["iteration"] == 0
    events = data["workqueues"][0]   # totals over the pwqs, stats by name
    assert events["stats"]["started"] == sum(pwq["stats"]["started"] for pwq in events["pwqs"]) > 0
    assert events["nr_active"] == sum(pwq["nr_active"] for pwq in events["pwqs"])
    rows = run([snap], fmt="csv").splitlines()
    assert rows[0].startswith("iteration,time,name,") and len(rows) == 1 + len(snap.workqueues)


def test_unknown_workqueue_names_close_ones(snap):
    with pytest.raises(WqkitError, match=r"unknown workqueue 'evnts' \(close: events") as info:
        run([snap], names=["evnts"])
    assert "\n" not in str(info.value)


def test_interval_counts_from_the_first_snapshot_even_a_slow_one(snap):
    # The first snapshot of a lab session waits for the debug info: the next one
    # must still come a full interval after it, not at once.
    taken = []

    def take():
        time.sleep(0.3 if not taken else 0.0)
        taken.append(time.monotonic())
        return snap

    monitor(take, io.StringIO(), names=["events"], interval=0.2, max_iterations=3)
    assert len(taken) == 3 and all(t - taken[0] >= 0.2 * k for k, t in enumerate(taken))


def test_affinity_scopes_show_each_scope_s_pods_and_each_unbound_workqueue_s(snap):
    from wqkit.inspect.model import AffinityScope
    from wqkit.inspect.text import cpu_list

    assert cpu_list([0, 1, 2, 3, 6, 8, 9]) == "0-3,6,8-9" and cpu_list([]) == ""
    assert scenario_lines(snap, "AFFINITY_SCOPES", snap.workqueues)[0].endswith("(Linux 6.6 brought them)")
    snap.scopes = [AffinityScope("cpu", False, [[0], [1], [2], [3]], [0, 0, 1, 1], [0, 1, 2, 3]),
                   AffinityScope("cache", True, [[0, 1], [2, 3]], [0, 1], [0, 0, 1, 1])]
    unbound = snap.workqueue("wqkit_fx_unbound")
    unbound.affinity_scope, unbound.affinity_strict = "default", False
    lines = scenario_lines(snap, "AFFINITY_SCOPES", snap.workqueues)
    assert lines[:4] == ["cpu: 4 pods", "  pod_cpus [0]=0 [1]=1 [2]=2 [3]=3", "  pod_node [0]=0 [1]=0 [2]=1 [3]=1",
                         "  cpu_pod  [0]=0 [1]=1 [2]=2 [3]=3"]
    assert "cache (default): 2 pods" in lines
    assert any(line.startswith("wqkit_fx_unbound") and "scope=default (cache) strict=False pods [0]=0-1 [1]=2-3"
               in line for line in lines)
    assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))).scopes == snap.scopes
