"""drgn inspection of the lab guest, from the host (its RAM mapped, the default, or over QMP),
from inside the guest, and from vmcores: known workqueues, real kworkers, consistency, the CLI."""

import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from wqkit.experiments import kmod
from wqkit.inspect.helpers import (find_workqueue, for_each_pool, for_each_pool_worker, for_each_pwq,
                                   for_each_workqueue, pool_nr_pending, workqueue_name)
from wqkit.inspect.kworkers import kworkers
from wqkit.inspect.lab import LabInspector, HostInspector, vmcore_snapshot
from wqkit.inspect.source import open_program
from wqkit.inspect.text import pool_line
from wqkit.lab.choose import resolve_kernel
from wqkit.lab.topology import memory_mib
from wqkit.paths import SOURCE_DIR

pytestmark = pytest.mark.lab
WQKIT = [sys.executable, "-m", "wqkit.cli"]


@pytest.fixture(scope="module")
def inspector(lab_target):
    """The lab's default inspector: drgn on the host, reading the guest's RAM mapped into it."""
    found = HostInspector.for_lab(lab_target)
    assert found.via == "ram", "the lab's RAM was not mapped: the inspector fell back to QMP"
    return found


def flat(snapshot) -> dict:
    """Every value of a snapshot by a stable path (workqueues by name and occurrence, pools by id,
    workers by pid), so that two snapshots compare field by field."""
    data = snapshot.to_dict()
    out, seen = {}, Counter()
    for wq in data["workqueues"]:
        key = (wq["name"], seen[wq["name"]])
        seen[wq["name"]] += 1
        for field, value in wq.items():
            if field == "pwqs":
                for i, pwq in enumerate(value):
                    for name, v in pwq.items():
                        out[("wq", key, "pwq", i, name)] = json.dumps(v)
            else:
                out[("wq", key, field)] = json.dumps(value)
    for pool in data["pools"]:
        out.update({("pool", pool["id"], k): json.dumps(v) for k, v in pool.items()})
    for worker in data["workers"]:
        out.update({("worker", worker["pid"], worker["pool_id"], k): json.dumps(v) for k, v in worker.items()})
    return out


def test_a_consistent_qmp_snapshot_equals_the_guests_own_where_the_guest_is_quiet(lab_target):
    guest = LabInspector(lab_target)
    before = flat(guest.snapshot())
    qmp = HostInspector.for_lab(lab_target, consistent=True).snapshot()
    after = flat(guest.snapshot())
    seen = flat(qmp)
    # What did not change between the guest's two snapshots must be exactly what QMP read.
    quiet = {k for k in before if before[k] == after.get(k)}
    assert len(quiet) > 0.8 * len(before)
    assert {k: seen.get(k) for k in quiet} == {k: before[k] for k in quiet}
    assert qmp.paused_seconds is not None and 0 < qmp.paused_seconds < 5


def test_the_mapped_ram_reads_what_qemu_reads_with_the_guest_stopped(lab_target, inspector):
    from wqkit.inspect.counters import read_counters
    from wqkit.inspect.snapshot import take_snapshot
    from wqkit.lab.qmp import QmpClient

    qmp = HostInspector.for_lab(lab_target, via="qmp")
    # Every byte of the guest's RAM is mapped (the firmware ROM is not RAM).
    assert qmp.via == "qmp" and inspector.ram.size == memory_mib(lab_target.session.memory) << 20
    with QmpClient(lab_target.session.qmp_control_socket) as control, control.paused():
        with qmp.reading() as over_qmp, inspector.reading() as over_ram:
            by_qmp, by_ram = take_snapshot(over_qmp), take_snapshot(over_ram)
            pools, workqueues = read_counters(over_ram)
            # Bulk memory (a 16 MiB span of the kernel's direct map) reads the same both ways.
            start = over_ram["page_offset_base"].value_() + (1 << 24)
            assert over_ram.read(start, 1 << 24) == over_qmp.read(start, 1 << 24)
    assert by_ram.kernel_release == lab_target.release
    assert flat(by_ram) == flat(by_qmp)
    # The timeline's counters-only read agrees with the full snapshot of the same moment.
    assert [tuple(p) for p in pools] == [(p.id, p.nr_workers, p.nr_idle, p.nr_running, p.nr_pending)
                                         for p in by_ram.pools]
    assert [tuple(w) for w in workqueues] == [(w.name, w.nr_active, w.started, w.completed)
                                              for w in by_ram.workqueues]


def _fixture_pwqs(snap):
    return [p for wq in snap.workqueues if wq.name.startswith("wqkit_fx") for p in wq.pwqs]


ROUNDS, ROUND_ITEMS = 5000, 200


def test_live_qmp_reads_are_bracketed_by_consistent_ones(lab_target):
    live = HostInspector.for_lab(lab_target)
    with kmod.loaded(lab_target, "wq_fixture", {"max_active": 3}):
        # Many short rounds: the lists stay short (a live walk of a list of 10^5 items changing
        # under it is torn, and taken again paused), the counters keep moving, and the
        # load (about 2 µs of guest time per item under TCG, plus each round's write) outlasts the reads.
        lab_target.run(f"(for i in $(seq {ROUNDS}); do echo {ROUND_ITEMS} > /sys/module/wq_fixture/parameters/run; "
                       "done) >/dev/null 2>&1 &", check=True)
        deadline = time.monotonic() + 120
        first = live.snapshot(consistent=True)
        while not any(p.stats.started for p in _fixture_pwqs(first)):    # until the load has begun
            assert time.monotonic() < deadline, "the fixture's load did not start"
            first = live.snapshot(consistent=True)
        reads = []
        for _ in range(20):      # over a second of the load
            reads.append(live.snapshot())
            time.sleep(0.05)
        last = live.snapshot(consistent=True)
        lab_target.run(f"while [ $(cat /sys/module/wq_fixture/parameters/run) -lt {ROUNDS * ROUND_ITEMS} ]; "
                       "do sleep 0.5; done",
                       check=True, timeout=600)

    def counters(snap):
        return {(wq.name, i, p.pool_id): p.stats for wq in snap.workqueues if wq.name.startswith("wqkit_fx")
                for i, p in enumerate(wq.pwqs)}

    low, high = counters(first), counters(last)
    assert any(high[k].started > low[k].started for k in low), "the load ran during the reads"
    # Most reads are live ones; a read that stayed torn was taken again paused, and says so.
    assert sum(read.paused_seconds is None for read in reads) >= len(reads) // 2, [r.paused_seconds for r in reads]
    live_totals = {sum(stats.started for stats in counters(read).values()) for read in reads
                   if read.paused_seconds is None}
    assert len(live_totals) >= 3, "live reads saw the load move"
    for read in map(counters, reads):
        for key, stats in read.items():
            for name, value in stats._asdict().items():
                assert low[key]._asdict()[name] <= value <= high[key]._asdict()[name], (key, name)


def test_fixture_workqueues_and_their_counters(lab_target, inspector):
    with kmod.loaded(lab_target, "wq_fixture", {"max_active": 5}):
        before = inspector.snapshot()
        lab_target.run("echo 321 > /sys/module/wq_fixture/parameters/run", check=True)
        after = inspector.snapshot()
    expected = {"wqkit_fx_percpu": ("percpu", 5), "wqkit_fx_unbound": ("unbound", 5),
                "wqkit_fx_ordered": ("ordered", 1)}
    for name, (kind, max_active) in expected.items():
        wq, old = after.workqueue(name), before.workqueue(name)
        assert (wq.type, wq.max_active) == (kind, max_active)
        assert wq.started - old.started == 321 and wq.completed - old.completed == 321
        assert wq.nr_active == 0
    assert {"unbound", "highpri"} <= set(after.workqueue("wqkit_fx_unbound").flag_names)
    assert after.workqueue("wqkit_fx_unbound").node_nr_active   # 6.9+ per-node accounting is read
    assert after.missing_fields == []


def test_every_worker_is_a_kworker_of_the_guest(lab_target, inspector):
    snap = inspector.snapshot(consistent=True)
    pids = [w.pid for w in snap.workers if w.pid is not None]
    # A worker may exit between the snapshot and the guest's read (idle culling): those are skipped.
    comms = lab_target.run("for p in " + " ".join(map(str, pids)) + "; do cat /proc/$p/comm 2>/dev/null; done; true",
                           check=True).stdout.split()
    assert len(comms) >= len(pids) - 2 and len(pids) > 0
    assert all(comm.startswith("kworker/") for comm in comms), comms


def test_the_kworker_listing_of_runs_is_ps_s_and_holds_the_kernels_workers(lab_target, inspector):
    # kworkers() (every run's meta.json counts kworkers with it, before and after) against ps and
    # against the kernel's own pool worker lists, read by drgn. Rescuers are kworkers in no pool.
    for _ in range(3):      # kworkers come and go; an idle guest settles
        listed = kworkers(lab_target)
        snap = inspector.snapshot(consistent=True)
        ps = dict(line.split(None, 1) for line in lab_target.run("ps -e -o pid=,comm=", check=True).stdout.splitlines())
        if set(kworkers(lab_target)) == set(listed):
            break
    assert {int(pid) for pid, comm in ps.items() if comm.startswith("kworker/")} == set(listed)
    assert {w.pid for w in snap.workers if w.pid is not None} <= set(listed) and len(listed) > 0


def test_workers_per_cpu_match_the_kworkers_bound_to_it(lab_target, inspector):
    for _ in range(3):   # kworkers come and go; an idle guest settles
        snap = inspector.snapshot()
        comms = lab_target.run("ps -e -o comm=", check=True).stdout.split()
        seen = Counter(int(m.group(1)) for m in (re.match(r"kworker/(\d+):", c) for c in comms) if m)
        reported = Counter(w.cpu for w in snap.workers if w.pid is not None and w.cpu >= 0)
        if seen == reported:
            break
    assert reported == seen and sum(seen.values()) > 0


def test_vmcore_read_on_the_host_matches_the_live_guest(lab_target, inspector, tmp_path):
    vmcore = lab_target.session.workdir / "test.vmcore"
    try:
        live = inspector.snapshot()
        dumped = vmcore_snapshot(lab_target, vmcore)
        assert [wq.name for wq in dumped.workqueues] == [wq.name for wq in live.workqueues]
        assert [p.id for p in dumped.pools] == [p.id for p in live.pools]
        # The drgn helpers agree with the snapshot taken from the same dump.
        prog = open_program(core=vmcore, vmlinux=lab_target.kernel.debug_vmlinux)
        assert [workqueue_name(wq) for wq in for_each_workqueue(prog)] == [wq.name for wq in dumped.workqueues]
        # The busiest workqueue of the dump, by position: 7.x has two named "events" (the deprecated
        # system_wq, idle, and system_percpu_wq), so a name does not say which.
        workqueues = list(for_each_workqueue(prog))
        busiest = max(range(len(workqueues)), key=lambda i: dumped.workqueues[i].started)
        found, info = workqueues[busiest], dumped.workqueues[busiest]
        assert find_workqueue(prog, info.name) is not None and len(list(for_each_pwq(found))) == len(info.pwqs)
        started = sum(pwq.stats[0].value_() for pwq in for_each_pwq(found))   # PWQ_STAT_STARTED
        assert started == info.started > 0
        pools = list(for_each_pool(prog))   # the raw IDR walk finds the same pools, in the same order
        assert [pool.id.value_() for pool in pools] == [info.id for info in dumped.pools]
        for pool, info in zip(pools, dumped.pools):
            assert pool.id.value_() == info.id and pool_nr_pending(pool) == info.nr_pending
            assert len(list(for_each_pool_worker(pool))) == sum(w.pool_id == info.id for w in dumped.workers)
        # The same dump without its debug info is a one-line error.
        proc = subprocess.run([*WQKIT, "monitor", "--core", str(vmcore), "--vmlinux", str(tmp_path / "none")],
                              capture_output=True, text=True)
        assert proc.returncode == 1 and "no such debug vmlinux" in proc.stderr
        proc = subprocess.run([*WQKIT, "monitor", "--core", str(vmcore), "--vmlinux",
                               str(lab_target.kernel.debug_vmlinux), "-s", "ALL_POOLWORKQUEUES"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0 and proc.stdout.count("pool[") == len(dumped.pools)
        # The seed's entry point, run by drgn's own command line on the same dump.
        proc = subprocess.run([str(Path(sys.executable).parent / "drgn"), "-q", "-c", str(vmcore), "-s",
                               str(lab_target.kernel.debug_vmlinux), str(SOURCE_DIR / "scripts" / "wq_monitor.py"),
                               "-s", "ALL_POOLWORKQUEUES"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[:-1] == [pool_line(p) for p in dumped.pools]
    finally:
        vmcore.unlink(missing_ok=True)


@pytest.mark.parametrize("via", ["ram", "guest"])
def test_monitor_cli_in_the_lab(via):
    proc = subprocess.run([*WQKIT, "monitor", "--target", "lab", "--via", via, "events", "-v", "-i", "1", "-m", "2"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Iteration: ") == 2
    assert re.search(r"^ ├─pool\[\d{2}\] flags=0x", proc.stdout, re.M)
    assert re.search(r" ├─rate started= +[\d.]+/s", proc.stdout)


def test_smoke_run_reports_its_work_items_and_the_workqueues(lab_target, inspector):
    from wqkit.experiments.smoke import run_smoke

    report = run_smoke(lab_target, nr=777, progress=lambda m: None)
    assert report.work_items_executed == report.work_items_queued == 777
    assert report.release == lab_target.release and report.accel == lab_target.accel
    assert report.workqueues == [wq.name for wq in inspector.snapshot().workqueues]


def test_linux_6_1_reports_what_it_lacks_instead_of_failing():
    # Debian 12's own kernel (installed by `make setup`): no pwq stats (6.3+),
    # no min_active or per-node nr_active (6.9+), max_active is saved_max_active,
    # and its worker flags are an anonymous enum.
    proc = subprocess.run([*WQKIT, "monitor", "--kernel", "6.1", "--format", "json", "-m", "1"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    snap = json.loads(proc.stdout)
    assert snap["kernel_release"].startswith("6.1.")
    assert snap["missing_fields"] == ["pool_workqueue.stats", "workqueue_struct.min_active",
                                      "workqueue_struct.node_nr_active"]
    events = next(wq for wq in snap["workqueues"] if wq["name"] == "events")
    assert (events["type"], events["max_active"], events["stats"], events["min_active"]) == ("percpu", 256, None, None)
    kblockd = next(wq for wq in snap["workqueues"] if wq["name"] == "kblockd")
    assert {"mem_reclaim", "highpri"} <= set(kblockd["flag_names"]) and kblockd["rescuer_pid"] > 0
    assert snap["workers"] and all(w["comm"].startswith("kworker/") for w in snap["workers"])
    assert not [name for w in snap["workers"] for name in w["flag_names"] if name.startswith("0x")]


def test_qmp_misuse_is_a_one_line_error(lab_target, tmp_path):
    vmlinux = str(lab_target.kernel.debug_vmlinux)
    bare_socket = tmp_path / "bare.sock"
    # A QEMU with a QMP socket but no guest kernel and no vmcoreinfo device.
    bare = subprocess.Popen(["qemu-system-x86_64", "-display", "none", "-S", "-nodefaults",
                             "-qmp", f"unix:{bare_socket},server=on,wait=off"])
    try:
        for _ in range(100):
            if bare_socket.exists():
                break
            time.sleep(0.1)
        for socket, message in ((tmp_path / "nothing.sock", "no QEMU answers on"),
                                (bare_socket, "the guest published no vmcoreinfo")):
            proc = subprocess.run([*WQKIT, "monitor", "--qmp", str(socket), "--vmlinux", vmlinux],
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        bare.kill()
        bare.wait()
    # The lab's guest (through its second QMP socket) read with another kernel's debug vmlinux.
    other = resolve_kernel("6.1").debug_vmlinux
    proc = subprocess.run([*WQKIT, "monitor", "--qmp", str(lab_target.session.qmp_control_socket),
                           "--vmlinux", str(other)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert re.search(r"vmlinux does not match the guest's kernel \(" + re.escape(lab_target.release), proc.stderr), \
        proc.stderr


def test_a_wedged_worker_is_diagnosed_from_outside(lab_target, inspector):
    # A worker of CPU 0 blocks; 16 items pile up behind it (max_active 1). The guest's command
    # channel is stuck waiting for them, as an in-guest monitor would be: QMP still sees all.
    ko = kmod.build(lab_target) / "wq_stall.ko"
    lab_target.run(f"insmod {ko} hold_s=20 pending=16", check=True)
    stuck = threading.Thread(target=lab_target.run, args=("echo 1 > /sys/module/wq_stall/parameters/flush",),
                             kwargs={"timeout": 300})
    stuck.start()
    try:
        time.sleep(1)
        assert stuck.is_alive(), "the guest's command is blocked behind the wedged worker"
        snap = inspector.snapshot()
        blocked = [w for w in snap.workers if w.current_func == "stall_block_fn"]
        assert len(blocked) == 1 and blocked[0].cpu == 0 and blocked[0].desc == "wqkit_stall"
        behind = snap.df_pending()
        behind = behind[behind["workqueue"] == "wqkit_stall"]
        assert len(behind) == 16 and behind["inactive"].all() and set(behind["function"]) == {"stall_quick_fn"}
        assert set(behind["pool_id"]) == {blocked[0].pool_id}
        assert snap.workqueue("wqkit_stall").nr_active == 1
    finally:
        stuck.join(timeout=300)
    lab_target.run("rmmod wq_stall", check=True)
    assert inspector.snapshot().workqueue("wqkit_stall") is None


def test_a_reloaded_module_is_a_new_symbol_table(lab_target, inspector):
    # Cached module symbols must not outlive the load they were read from: a rebuilt module
    # loaded again at the same address would otherwise keep its old functions' names.
    from drgn.helpers.linux.module import find_module

    from wqkit.inspect.helpers import module_load_key

    loads = []
    for _ in range(2):
        with kmod.loaded(lab_target, "wq_smoke", {"nr": 10}):
            module = find_module(inspector.prog, "wq_smoke")
            loads.append((module.value_(), module_load_key(module)))
    assert loads[0][1] != loads[1][1], loads
