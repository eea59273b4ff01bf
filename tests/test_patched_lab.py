"""The patched lab kernel (linux_patch_exp/, built and cached by wqkit): it boots, its
tracepoints serve the seed's bpftrace one-liner, and it times the inside of the workqueue code.

The kernel is built here when it is not cached (about 10 minutes on 2 cores the first time).
Its series is 6.12, or --lab-kernel's when that is a series wqkit builds (``--lab-kernel 7.3``
tests the port in linux_patch_exp/7.3/, as ``make test-7x`` does).
"""

import re
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from wqkit import analysis
from wqkit.experiments import kmod
from wqkit.lab.kernel_source import DEFAULT_SERIES, built_only, source_package, source_tarball
from wqkit.lab import LabSession
from wqkit.lab.build import build_kernel
from wqkit.experiments.runner import run_experiment
from wqkit.inspect.kworkers import kworkers
from wqkit.target import LabTarget
from wqkit.trace import BPFTRACE_DIR

from conftest import assert_pool_deaths_traced

pytestmark = [pytest.mark.lab, pytest.mark.network]   # builds the kernel from Debian's source
TRACEFS = "/sys/kernel/tracing"


@pytest.fixture(scope="module")
def series(request) -> str:
    """The series of the patched kernel under test."""
    lab_kernel = request.config.getoption("--lab-kernel") or ""
    return lab_kernel if built_only(lab_kernel) else DEFAULT_SERIES


@pytest.fixture(scope="module")
def patched_build(series):
    return build_kernel("patched", progress=lambda m: print(f"wqkit: {m}"), series=series)


@pytest.fixture(scope="module")
def patched(patched_build):
    with LabSession(kernel=patched_build.kernel()) as session:
        session.run(f"mountpoint -q {TRACEFS} || mount -t tracefs tracefs {TRACEFS}; "
                    "mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug", check=True)
        yield LabTarget(session=session)


def test_the_patched_kernel_boots_and_names_itself(patched, patched_build):
    release = patched.run("uname -r", check=True).stdout.strip()
    assert release == patched_build.kernel().release and release.endswith("-wqkit")
    assert patched.kernel.patched
    config = (patched_build.out / ".config").read_text()
    assert "CONFIG_WQ_MEASURE=y" in config and "CONFIG_DEBUG_INFO_BTF=y" in config


def test_the_dying_tracepoints_are_in_tracefs(patched):
    for event, fields in (("workqueue_worker_dying_start", ("pid", "pool_id", "id")),
                          ("workqueue_worker_dying_end", ("pid", "id"))):
        fmt = patched.run(f"cat {TRACEFS}/events/workqueue/{event}/format", check=True).stdout
        for field in fields:
            assert re.search(rf"field:\w+ {field};", fmt), (event, field)


def unbound_kworkers(target) -> set[int]:
    return {pid for pid, comm in kworkers(target).items() if comm.startswith("kworker/u")}


def test_the_seeds_one_liner_prints_a_histogram_after_workers_die(patched):
    ko = kmod.build(patched) / "wq_worker_death.ko"
    out = "/tmp/seed-one-liner.out"
    patched.run(f"insmod {ko} hold_ms=300", check=True)
    try:
        # Attributes no other workqueue has give wqkit_death a pool of its own; 4 sleeping
        # items at once make that pool create workers, which die with it.
        patched.run("echo -7 > /sys/devices/virtual/workqueue/wqkit_death/nice", check=True)
        before = unbound_kworkers(patched)
        patched.run("echo 4 > /sys/module/wq_worker_death/parameters/run", check=True, timeout=120)
        created = unbound_kworkers(patched) - before
        assert created, "the flood created workers"
        bt = BPFTRACE_DIR / "worker_death_seed.bt"
        patched.run(f"setsid bpftrace {bt} > {out} 2>&1 < /dev/null & echo $! > /tmp/bt.pid", check=True)
        deadline = time.monotonic() + 300
        while "Attaching" not in patched.run(f"cat {out}").stdout:
            assert time.monotonic() < deadline, patched.run(f"cat {out}").stdout
            time.sleep(2)
        time.sleep(2)
        alive = unbound_kworkers(patched)
    finally:
        patched.run("rmmod wq_worker_death", timeout=120)
    time.sleep(2)
    died = alive - unbound_kworkers(patched)
    # bpftrace prints its maps and detaches on SIGINT: minutes under TCG on a busy machine.
    patched.run("kill -INT $(cat /tmp/bt.pid); while kill -0 $(cat /tmp/bt.pid) 2>/dev/null; do sleep 0.5; done",
                timeout=600)
    printed = patched.run(f"cat {out}", check=True).stdout
    assert "@duration_us:" in printed, printed
    counts = [int(n) for n in re.findall(r"^\[[^\]\n]*[\])] +(\d+) \|", printed, re.MULTILINE)]
    assert died >= created and sum(counts) == len(died), printed


def test_both_engines_trace_death_on_the_patched_tracepoints(patched, tmp_path):
    from wqkit.trace import workers

    path = workers.trace_workers("die", engine="both", workers=4, target=patched, out=tmp_path,
                                 progress=lambda m: None)
    trace = analysis.load_run(path)
    meta, events = trace.meta, trace.events
    assert meta["status"] == "ok" and meta["program"] == "worker_death_tracepoints"
    assert meta["probes"] == ["tracepoint:workqueue:workqueue_worker_dying_start",
                              "tracepoint:workqueue:workqueue_worker_dying_end"]
    for name in meta["engines"]:
        assert_pool_deaths_traced(meta, events, name)
        dead = events[(events["event"] == "DEAD") & (events["engine"] == name)]
        assert sum(meta["tracers"][name]["histogram_ns_log2"].values()) == len(dead)


def test_insert_exec_on_the_patched_kernel_has_phases_inside_the_modules_pair(patched, tmp_path):
    path = run_experiment("insert_exec", {"nr": 2000, "gap_us": 20}, target=patched, out=tmp_path,
                          progress=lambda m: None)
    run = analysis.load_run(path)
    assert run.ok and run.meta["patched"] and run.meta["phases"]["rows"] == 2000
    stamps = pd.read_parquet(path / "phases.parquet").set_index("seq")
    samples = run.samples.set_index("seq").loc[stamps.index]
    points = stamps.to_numpy(dtype=np.int64)
    # Every item went through queue, insert, start and func; the stamps it has never go backwards.
    for point in ("queue", "insert", "start", "func"):
        assert (stamps[point] > 0).all(), point
    for row in points:
        passed = row[row > 0]
        assert (np.diff(passed) >= 0).all(), row
    # The module's own pair (t0 before queue_work_on, t1 at the function's first line) brackets them.
    assert (samples["t0"].to_numpy(dtype=np.int64) <= stamps["queue"].to_numpy(dtype=np.int64)).all()
    assert (stamps["func"].to_numpy(dtype=np.int64) <= samples["t1"].to_numpy(dtype=np.int64)).all()
    summary = analysis.df_phase_summary(run)
    assert summary.loc["total", "p50_ns"] < summary.loc["module", "p50_ns"]


def function_code(obj: str, function: str) -> list[str]:
    """A function's instructions from objdump, addresses and relocation targets left out."""
    text = subprocess.run(["objdump", "-dr", "--no-show-raw-insn", f"--disassemble={function}", obj],
                          capture_output=True, text=True, check=True).stdout
    body = text.split(f"<{function}>:", 1)[1]
    lines = []
    for line in body.splitlines():
        line = re.sub(r"^\s*[0-9a-f]+:\s*", "", line).strip()
        line = re.sub(r"\b[0-9a-f]{4,}\b <[^>]*>", "<addr>", line)
        line = re.sub(r"R_X86_64_\w+\s+\S+", "<reloc>", line)
        if line:
            lines.append(line)
    return lines


def test_with_the_option_off_the_hot_functions_are_the_vanilla_code(patched_build, series, tmp_path):
    # Compile workqueue.c twice in the patched build tree, with CONFIG_WQ_MEASURE undefined:
    # once from the patched source, once as Debian ships it.
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    subprocess.run(["tar", "-xJf", str(source_tarball(series=series)), "-C", str(pristine), "--strip-components=1",
                    f"{source_package(series)}/kernel/workqueue.c"], check=True)
    cmd = (patched_build.out / "kernel" / ".workqueue.o.cmd").read_text().split("\n", 1)[0]
    cmd = cmd.split(":=", 1)[1].strip()
    off = tmp_path / "off.h"
    off.write_text("#undef CONFIG_WQ_MEASURE\n")
    objects = {}
    for name, source in (("patched", patched_build.src / "kernel" / "workqueue.c"),
                         ("vanilla", pristine / "workqueue.c")):
        obj = tmp_path / f"{name}.o"
        line = re.sub(r"-Wp,-MMD,\S+", "", re.sub(r"-o \S+", f"-o {obj}", cmd))
        line = re.sub(r"\S*kernel/workqueue\.c\s*$", f"-include {off} {source}", line.strip())
        proc = subprocess.run(line, shell=True, cwd=patched_build.out, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        objects[name] = str(obj)
    # gcc inlines process_one_work() into process_scheduled_works() in this configuration:
    # compare the functions that hold the hot code, whichever exist.
    symbols = subprocess.run(["nm", objects["vanilla"]], capture_output=True, text=True, check=True).stdout.split()
    functions = [f for f in ("__queue_work", "process_one_work", "process_scheduled_works") if f in symbols]
    assert "__queue_work" in functions and len(functions) >= 2
    for function in functions:
        assert function_code(objects["patched"], function) == function_code(objects["vanilla"], function), function
