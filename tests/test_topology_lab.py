"""A declared machine shape is what the guest's kernel sees (CPUs, sockets, SMT siblings, caches, NUMA
nodes), and the monitor's affinity scopes are the kernel's own, as its tools/workqueue/wq_dump.py prints them."""

import json
import re
import subprocess
import sys
import time

import pytest

from wqkit.analysis import df_placement, load_run
from wqkit.analysis.placement import PLACES
from wqkit.errors import WqkitError
from wqkit.experiments.runner import run_experiment
from wqkit.runs.spec import release_tuple
from wqkit.inspect.lab import HostInspector
from wqkit.inspect.snapshot import take_snapshot
from wqkit.inspect.text import scope_lines
from wqkit.lab.kernel_source import DEFAULT_SERIES, SOURCE_SUITES, source_package, source_tarball
from wqkit.lab.topology import memory_mib, parse_topology
from wqkit.target import LabTarget

pytestmark = pytest.mark.lab

SHAPE = "sockets=2,cores=2,threads=2,numa=2"


@pytest.fixture(scope="module")
def shaped(request):
    from conftest import lab_kernel

    with LabTarget(kernel=lab_kernel(request.config.getoption("--lab-kernel")), topology=parse_topology(SHAPE),
                   use_kept=False, progress=lambda m: None) as target:
        yield target


def _cpu_files(target, cpus: int, name: str) -> list[str]:
    return [v.strip() for v in target.read_files([f"/sys/devices/system/cpu/cpu{c}/{name}" for c in range(cpus)])]


def test_the_guest_s_sysfs_shows_the_declared_topology(shaped):
    assert shaped.read("/sys/devices/system/cpu/online").strip() == "0-7"
    assert _cpu_files(shaped, 8, "topology/physical_package_id") == ["0"] * 4 + ["1"] * 4
    siblings = _cpu_files(shaped, 8, "topology/thread_siblings_list")
    assert siblings == ["0-1", "0-1", "2-3", "2-3", "4-5", "4-5", "6-7", "6-7"]
    # Each socket its own last-level cache.
    assert _cpu_files(shaped, 8, "cache/index3/shared_cpu_list") == ["0-3"] * 4 + ["4-7"] * 4
    nodes = shaped.read_files(["/sys/devices/system/node/node0/cpulist", "/sys/devices/system/node/node1/cpulist"])
    assert [n.strip() for n in nodes] == ["0-3", "4-7"]
    assert shaped.session.topology == parse_topology(SHAPE)


def _wq_dump_scopes(text: str) -> dict[str, dict]:
    """wq_dump.py's "Affinity Scopes" section: per scope, its pods' CPUs (from the hex masks),
    nodes and each CPU's pod, and whether it is the default."""
    scopes, current = {}, None
    for line in text.split("Worker Pools")[0].splitlines():
        if match := re.fullmatch(r"([A-Z_]+)( \(default\))?", line.strip()):
            current = scopes.setdefault(match.group(1).lower(), {"default": bool(match.group(2))})
        elif current is not None and line.strip().startswith(("pod_cpus", "pod_node", "cpu_pod")):
            key, *items = line.split()
            values = [item.split("=", 1)[1] for item in items]
            if key == "pod_cpus":
                current[key] = [[c for c in range(64) if int(v.replace(" ", ""), 16) >> c & 1] for v in values]
            else:
                current[key] = [int(v) for v in values]
    return scopes


def test_the_monitor_s_affinity_scopes_are_wq_dump_s(shaped, tmp_path):
    """Every scope's pods, nodes and CPU → pod map, read by wqkit over QMP, equal what the kernel's
    own wq_dump.py prints with drgn inside the same guest; each unbound workqueue has a scope."""
    script = shaped.session.shared_dir / "wq_dump.py"
    # The kernel's own script: the one of its series' source (7.3's knows cache_shard).
    series = next((s for s in SOURCE_SUITES if shaped.kernel.release.startswith(s + ".")), DEFAULT_SERIES)
    member = f"{source_package(series)}/tools/workqueue/wq_dump.py"
    with open(script, "wb") as out:
        subprocess.run(["tar", "-xJOf", str(source_tarball(lambda m: None, series)), member], stdout=out, check=True)
    dump = shaped.run(f"{sys.executable} -m drgn -q -s {shaped.kernel.debug_vmlinux} {script}", check=True,
                      timeout=600).stdout
    theirs = _wq_dump_scopes(dump)
    inspector = HostInspector.for_lab(shaped)
    # Each NUMA node's memory is a backend of its own; the host maps both (its RAM, all of it).
    assert inspector.via == "ram" and {s.region for s in inspector.ram.segments} == {"wqkit-node0", "wqkit-node1"}
    assert inspector.ram.size == memory_mib(shaped.session.memory) << 20
    snap = take_snapshot(inspector.prog)
    ours = {s.name: {"default": s.default, "pod_cpus": s.pod_cpus, "pod_node": s.pod_node, "cpu_pod": s.cpu_pod}
            for s in snap.scopes}
    assert ours == theirs and set(ours) >= {"cpu", "smt", "cache", "numa", "system"}
    assert [len(ours[s]["pod_cpus"]) for s in ("cpu", "smt", "cache", "numa", "system")] == [8, 4, 2, 2, 1]
    unbound = [wq for wq in snap.workqueues if wq.type == "unbound"]
    assert unbound and all(wq.affinity_scope is not None for wq in unbound)
    text = "\n".join(scope_lines(snap, snap.workqueues))
    assert "smt: 4 pods" in text and "pod_cpus [0]=0-1 [1]=2-3 [2]=4-5 [3]=6-7" in text


#: Scope → the places a strict workqueue's items queued on CPU 0 may run in, on SHAPE (CPU 0's
#: SMT sibling is 1, its socket's cache and node are CPUs 0-3).
#: (cache_shard's pods split a cache into shards of at most 8 cores: inside the cache too.)
STRICT_REACH = {"cpu": PLACES[:1], "smt": PLACES[:2], "cache": PLACES[:3], "cache_shard": PLACES[:3],
                "numa": PLACES[:4]}
#: Scope → its pods on SHAPE: a strict workqueue gets a pool of its own per pod (the pool's
#: attributes are the pod's CPUs and strictness), each made with its first kworker.
PODS = {"cpu": 8, "smt": 4, "cache": 2, "cache_shard": 2, "numa": 2}


@pytest.mark.parametrize("scope", list(STRICT_REACH))
def test_a_strict_scope_keeps_each_item_inside_the_queuing_cpu_s_pod(shaped, tmp_path, scope):
    """insert_exec on an unbound workqueue with affinity_scope=SCOPE and affinity_strict: every item
    queued on CPU 0 runs inside CPU 0's pod, as the guest's topology (recorded in the run) places it."""
    if scope == "cache_shard" and release_tuple(shaped.release) < (7, 1):
        pytest.skip(f"{shaped.release} has no cache_shard scope")
    run = load_run(run_experiment("insert_exec", {"nr": 400, "wq_flags": "unbound", "cpu": 0, "affinity_scope": scope,
                                                  "affinity_strict": True},
                                  target=shaped, out=tmp_path, progress=lambda m: None))
    assert run.meta["parameters"]["affinity_scope"] == scope and run.meta["parameters"]["affinity_strict"] == "Y"
    assert run.meta["cpu_topology"]["cache"] == ["0-3"] * 4 + ["4-7"] * 4 and run.meta["cpu_topology"]["node"] == [0] * 4 + [1] * 4
    table = df_placement(run)
    assert table["items"].sum() == 400 and (run.samples["cpu_queue"] == 0).all()
    outside = table.loc[[p for p in PLACES if p not in STRICT_REACH[scope]], "items"]
    assert outside.sum() == 0, table
    workers = run.meta["kworkers"]
    assert len(workers["pools_created"]) >= PODS[scope], workers
    assert all(workers["created_per_pool"].get(pool, 0) >= 1 for pool in workers["pools_created"]), workers


def test_a_scope_the_kernel_lacks_is_refused_before_the_lab_boots(tmp_path):
    """cache_shard arrived in 7.1: on an older lab kernel the run is refused before anything boots."""
    from conftest import lab_kernel

    kernel = lab_kernel(None)
    if release_tuple(kernel.release) >= (7, 1):
        pytest.skip(f"{kernel.release} has cache_shard")
    started = time.monotonic()
    with pytest.raises(WqkitError, match=r"affinity_scope=cache_shard needs Linux 7\.1 or later"):
        run_experiment("insert_exec", {"wq_flags": "unbound", "affinity_scope": "cache_shard"}, kernel=kernel,
                       out=tmp_path, progress=lambda m: None)
    assert time.monotonic() - started < 5, "it booted a lab first"
    meta = json.loads(next(tmp_path.glob("*/meta.json")).read_text())
    assert meta["status"] == "failed" and "lab" not in meta


def test_a_bh_workqueue_runs_every_item_on_the_queuing_cpu_in_softirq(shaped, tmp_path):
    """wq_flags=bh (Linux 6.9): each item runs in softirq context on the CPU that queued it."""
    if release_tuple(shaped.release) < (6, 9):
        pytest.skip(f"{shaped.release} has no BH workqueues")
    run = load_run(run_experiment("insert_exec", {"nr": 400, "wq_flags": "bh", "cpu": 3}, target=shaped,
                                  out=tmp_path, progress=lambda m: None))
    assert run.meta["parameters"]["wq_flags"] == "8"
    table = df_placement(run)
    assert table.loc[PLACES[0], "items"] == 400 and (run.samples["cpu_exec"] == 3).all(), table
