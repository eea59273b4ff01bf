"""Shared fixtures: one lab boot for every test that can share it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wqkit.lab import LabSession, resolve_kernel
from wqkit.lab.build import VARIANTS
from wqkit.target import LabTarget


#: Test files that need a kernel wqkit builds: it is built in the background from the start.
NEEDS_BUILD = {"test_patched_lab.py": "patched", "test_debug_kernel.py": "debug"}
#: Kernel variants (comma-separated) to build in the background after those this run needs.
PREBUILD_ENV = "WQKIT_PREBUILD"
_background_builds: list[subprocess.Popen] = []
#: The runs of the tests marked ``early`` (by test id), and the lab each runs on.
_early_runs: dict[str, EarlyRun] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab-kernel", default="stock", metavar="K",
                     help="the kernel of the shared lab boot (the `lab` fixture), as `--kernel` takes it: "
                     "`make test-debug` runs the modules' lab tests on `debug` and `kcsan`")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Tests that need a kernel built in the background run last (in their files' order): the
    build gets the whole run to finish instead of holding the suite up."""
    items.sort(key=lambda item: Path(str(item.fspath)).name in NEEDS_BUILD)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    _start_kernel_builds(session)
    _start_early_runs(session)


def _start_early_runs(session: pytest.Session) -> None:
    """Start each selected ``early`` test's run on a lab of its own (--lab-kernel), in a thread:
    its boot and waits overlap the tests before it instead of holding the suite up."""
    for item in session.items:
        marker = item.get_closest_marker("early")
        if marker is not None:
            early = _early_runs[item.nodeid] = EarlyRun(marker.kwargs["run"])
            threading.Thread(target=early.run_on_own_lab, args=(session.config.getoption("--lab-kernel"),),
                             daemon=True, name=f"early {item.name}").start()


@dataclass
class EarlyRun:
    """A test's lab run, started in a thread when the session starts."""

    run: Callable[[LabTarget, Path], object]
    future: Future = field(default_factory=Future)
    lab: LabSession | None = None

    def run_on_own_lab(self, kernel_spec: str) -> None:
        try:
            self.lab = LabSession(kernel=lab_kernel(kernel_spec), progress=lambda m: None)
            with self.lab:
                out = Path(tempfile.mkdtemp(prefix="wqkit-early-"))
                self.future.set_result(self.run(LabTarget(session=self.lab), out))
        except BaseException as error:  # noqa: BLE001  the test raises it
            self.future.set_exception(error)

    def stop(self) -> None:
        """Power its lab off if it is still running (the run then fails)."""
        if not self.future.done() and self.lab is not None:
            self.lab.close()


@pytest.fixture
def early_result(request: pytest.FixtureRequest):
    """The result of this test's ``early`` run (waiting for it to end)."""
    return _early_runs[request.node.nodeid].future.result()


def _start_kernel_builds(session: pytest.Session) -> None:
    """Start building each kernel a selected test needs (or --lab-kernel names) that is not cached,
    at the lowest CPU priority (SCHED_IDLE: it only takes what the tests leave idle, and never
    delays a lab guest's vCPU). The tests' own build_kernel() waits for it (the build's lock)."""
    from wqkit.lab.build import KernelBuild, build_root

    variants = {NEEDS_BUILD.get(Path(str(item.fspath)).name) for item in session.items}
    if any(item.get_closest_marker("lab") for item in session.items):
        variants.add(session.config.getoption("--lab-kernel"))
    # Kernels the next command will need (CI's `make test-debug-kernel`), built after this run's own.
    later = [v for v in os.environ.get(PREBUILD_ENV, "").split(",") if v]
    if set(later) - set(VARIANTS):
        raise pytest.UsageError(f"{PREBUILD_ENV}={','.join(later)}: variants are {', '.join(VARIANTS)}")
    wanted = [*sorted(variants & set(VARIANTS)), *(v for v in later if v not in variants)]
    missing = [v for v in wanted if not KernelBuild.of(v).complete.is_file()]
    if not missing:
        return
    # One build at a time, in one background shell: with two at once beside the tests, a
    # timing-sensitive lab test (state rows within a tick of the samples) failed in CI.
    logs = build_root() / "background-build.log"
    logs.parent.mkdir(parents=True, exist_ok=True)
    steps = [shlex.join([sys.executable, "-m", "wqkit.cli", "lab", "kernel", "build", f"--{v}"]) for v in missing]
    _background_builds.append(subprocess.Popen(
        ["/bin/sh", "-c", "; ".join(steps)], stdout=open(logs, "w"), stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A background build or early run still going when the tests end (a -k run, an interruption)
    is stopped."""
    for early in _early_runs.values():
        early.stop()
    for proc in _background_builds:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()


def pytest_terminal_summary(terminalreporter) -> None:
    """What tests recorded as their ``summary`` property (the fuzzer's counts), in CI's output
    whether they passed or not: pytest shows a passing test's prints to nobody."""
    lines = [f"{report.nodeid}:\n{value}" for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name == "summary"]
    if lines:
        terminalreporter.section("test summaries")
        for line in lines:
            terminalreporter.write_line(line)


def qemu_processes(marker: Path | None = None) -> list[int]:
    """PIDs of live QEMU processes (whose command line mentions ``marker``, when given)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and str(marker or "") in cmdline and int(proc.name) != os.getpid():
            pids.append(int(proc.name))
    return pids


def lab_kernel(variant: str):
    """A kernel wqkit builds, waiting for (or doing) its build: cached after the first time."""
    from wqkit.lab.build import build_kernel

    if variant in VARIANTS:
        build_kernel(variant, progress=lambda m: None)
    return resolve_kernel(variant)


@pytest.fixture(scope="session")
def lab_kernel_spec(request: pytest.FixtureRequest) -> str:
    """--lab-kernel as given, for what boots its own lab on it (a notebook's ``kernel`` parameter),
    its kernel built first when wqkit builds it."""
    spec = request.config.getoption("--lab-kernel")
    lab_kernel(spec)
    return spec


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> LabSession:
    """A lab session booted once for the whole test run, on --lab-kernel (stock by default)."""
    with LabSession(kernel=lab_kernel(request.config.getoption("--lab-kernel"))) as session:
        yield session


@pytest.fixture(scope="session")
def debug_lab(request: pytest.FixtureRequest) -> LabSession:
    """A lab session on the debug kernel (KASAN, lockdep, kmemleak...): the shared boot when
    --lab-kernel is debug, else one booted once for the tests that need it."""
    if request.config.getoption("--lab-kernel") == "debug":
        yield request.getfixturevalue("lab")
        return
    with LabSession(kernel=lab_kernel("debug")) as session:
        yield session


@pytest.fixture(scope="session")
def lab_target(lab: LabSession) -> LabTarget:
    """The shared lab session as a Target (not closed by the tests that use it)."""
    return LabTarget(session=lab)


def assert_unloaded_cleanly(target, module: str, log_mark: str) -> None:
    """``module`` is gone, said so in the kernel log, and the log since ``log_mark`` has no report
    of trouble (wqkit.lab.splats: BUG, WARNING, oops, KASAN, lockdep...) and no workqueue that
    took more than 10 flushes to drain (the kernel's drain_workqueue() warning). Leaks are
    checked by kmod.loaded() on a kernel with kmemleak."""
    from wqkit.experiments import kmod
    from wqkit.lab.splats import find_splats

    assert not kmod.is_loaded(target, module)
    lines = kmod.log_since(target, log_mark)
    log = "\n".join(lines)
    assert f"{module}: unloaded" in log
    assert not find_splats(lines), log
    assert "isn't complete after" not in log, log


def assert_flood_workers_traced(meta: dict, events, engine: str) -> set[int]:
    """``engine`` saw every kworker that appeared in the guest while it traced being created; on the
    flooded pool (the kernel's own answer: the flooding workqueue's pool on its CPU) exactly
    those, besides workers made before the guest's listing (listed, so not new); and each of the
    flood's workers appeared. Elsewhere the kernel may create a worker after the last listing.
    Returns the pids of the flood's workers: made on its pool after it began."""
    appeared, before = set(meta["truth"]["new_kworkers"]), set(meta["truth"]["kworkers_before"])
    mine = events[events["engine"] == engine]
    created = mine[mine["event"] == "CREATE"]
    flood_ns = int(mine.loc[mine["event"] == "FLOOD", "ns"].iloc[0])
    during = created[created["start_ns"] >= flood_ns]
    pool = meta["truth"]["flood_pool"]
    on_pool = set(created.loc[created["pool"] == pool, "pid"].astype(int))
    flood_workers = set(during.loc[during["pool"] == pool, "pid"].astype(int))
    assert appeared <= set(created["pid"].astype(int))
    assert on_pool - before == appeared & on_pool
    assert len(flood_workers) >= 4 and flood_workers <= appeared
    return flood_workers


def assert_pool_deaths_traced(meta: dict, events, engine: str) -> set[int]:
    """``engine`` saw exactly the workers of the destroyed pool (the pool of the kworkers created
    for it) die, and they are the kworkers that went away in the guest. Any other death it saw is
    a kworker listed before the load (the kernel culls workers idle for IDLE_WORKER_TIMEOUT, such
    as an earlier test's, at any time). Returns the pids of the pool's workers."""
    truth = meta["truth"]
    created, gone, before = (set(truth[k]) for k in ("kworkers_created", "kworkers_gone", "kworkers_before"))
    mine = events[events["engine"] == engine]
    dying = mine[mine["event"] == "DYING"]
    dead = set(mine.loc[mine["event"] == "DEAD", "pid"].astype(int))
    pools = set(dying.loc[dying["pid"].isin(created), "pool"])
    assert len(pools) == 1
    on_pool = set(dying.loc[dying["pool"].isin(pools), "pid"].astype(int))
    assert on_pool and on_pool <= dead and on_pool == gone & created
    assert dead - on_pool <= before
    return on_pool


def assert_dependencies_respected(run, task_graph):
    """Every task of a kserver run ran once per repetition, after every task it depends on, and
    no makespan beats its lower bound. Returns the run's tasks."""
    from wqkit import analysis

    tasks = analysis.df_tasks(run)
    repeat = int(run.meta["parameters"]["repeat"])
    # Every task ran exactly once per repetition.
    assert len(tasks) == repeat * len(task_graph.tasks) and not tasks.index.duplicated().any()
    for rep in range(repeat):
        one = tasks.xs(rep, level="rep")
        for before, after in task_graph.edges:
            assert one.loc[after, "start"] >= one.loc[before, "end"], (rep, before, after)
            assert one.loc[after, "ready"] >= one.loc[before, "end"], (rep, before, after)
    spans = analysis.df_makespan(run)
    assert (spans["makespan_ns"] >= spans["lower_bound_ns"]).all()
    return tasks
