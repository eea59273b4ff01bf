"""The debug lab kernel (KASAN, UBSAN, lockdep, debug objects, kmemleak, watchdogs): it boots with
its checkers on, a module runs clean on it, kserver takes 10^4 generated inputs (runs each graph it
accepts once) in one boot, and each kind of bug the checks are there for is caught (a test-only module)."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from conftest import assert_dependencies_respected, lab_kernel

from wqkit import analysis
from wqkit.experiments import graph, graph_fuzz, kmod
from wqkit.experiments.runner import run_experiment
from wqkit.lab import LabSession
from wqkit.lab.splats import find_splats
from wqkit.target import LabTarget

pytestmark = pytest.mark.lab

#: Inputs per fuzzing run (the issue's floor), and the seed: new each run unless WQKIT_FUZZ_SEED says.
FUZZ_INPUTS = 10_000
FUZZ_SEED = int(os.environ.get("WQKIT_FUZZ_SEED", time.time_ns() % 2**32))
BUGGY_MODULE = Path(__file__).parent / "data" / "buggy_module"


@pytest.fixture(scope="module")
def debug_target(debug_lab: LabSession) -> LabTarget:
    return LabTarget(session=debug_lab)


def test_the_debug_kernel_boots_with_its_checkers_on_and_clean(debug_target):
    assert debug_target.kernel.variant == "debug" and debug_target.release.endswith("-wqkit-debug")
    boot_log = debug_target.run("dmesg", check=True).stdout
    assert "KernelAddressSanitizer initialized" in boot_log
    assert debug_target.run(f"test -w {kmod.KMEMLEAK} && test -e /proc/lockdep && "
                            "grep -q kasan_multi_shot /proc/cmdline").returncode == 0
    assert find_splats(boot_log.splitlines()) == []


def test_a_module_runs_clean_on_the_debug_kernel_and_its_run_says_so(debug_target, tmp_path):
    path = run_experiment("insert_exec", {"nr": 2000}, target=debug_target, out=tmp_path, progress=lambda m: None)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "ok" and meta["samples"]["collected"] == 2000
    assert meta["kernel_reports"] == {"splats": [], "leaks_checked": True, "races_elsewhere": []}
    assert meta["kernel_variant"] == "debug" and "sanitizers" in meta["timing_note"]
    assert not (path / "splats.txt").exists() and "wq_insert_exec" in (path / "dmesg.txt").read_text()


def test_kserver_takes_exactly_what_python_takes_and_runs_it_on_generated_inputs(debug_target, record_property):
    inputs = graph_fuzz.fuzz_inputs(FUZZ_INPUTS, seed=FUZZ_SEED, repeat=1)
    report = graph_fuzz.fuzz_kserver(debug_target, inputs, repeat=1, progress=lambda m: None)
    # The samples limit binds only with a large repeat: its two inputs again, under repeat=1000 (the
    # rest of the limit set ran above; its largest busy task alone takes 3 min under TCG).
    samples = [item for item in graph_fuzz.limit_inputs(1000) if "samples" in item.label]
    limits = graph_fuzz.fuzz_kserver(debug_target, samples, repeat=1000, progress=lambda m: None)
    summary = f"fuzz seed {FUZZ_SEED} (WQKIT_FUZZ_SEED={FUZZ_SEED} repeats it)\n{report.summary()}\n{limits.summary()}"
    record_property("summary", summary)
    assert report.ok and limits.ok, summary
    assert report.inputs >= FUZZ_INPUTS and min(report.accepted, report.refused) > FUZZ_INPUTS // 10
    assert limits.accepted == 1 and limits.refused == 1


def test_accepted_generated_graphs_run_and_respect_their_dependencies(debug_target, tmp_path):
    rng = random.Random(FUZZ_SEED)
    chosen = [item for item in graph_fuzz.limit_inputs(1) if item.label == "limit: deepest chain"]
    chosen += rng.sample([item for item in graph_fuzz.fuzz_inputs(300, seed=FUZZ_SEED, repeat=2)
                          if item.label.startswith("mutated") and graph_fuzz.expected(item, 2) is None], 2)
    for item in chosen:
        task_graph = graph.TaskGraph.from_bytes(item.data)
        path = run_experiment("kserver", {"repeat": 2}, target=debug_target, out=tmp_path, graph=task_graph,
                              progress=lambda m: None)
        run = analysis.load_run(path)
        assert run.ok and run.meta["kernel_reports"]["splats"] == [], item.label
        assert_dependencies_respected(run, task_graph)


@pytest.mark.parametrize("bug, kind, words", [
    (1, "kmemleak", "unreferenced object"),
    (2, "kasan", "slab-use-after-free"),
    (3, "odebug", "free active"),
    (4, "bug", "sleeping function called from invalid context"),
])
def test_each_kind_of_bug_fails_the_load_with_its_report(buggy_target, bug, kind, words, tmp_path):
    with pytest.raises(kmod.KernelSplats, match=words) as caught:
        with kmod.loaded(buggy_target, "wq_buggy", {"bug": bug}, progress=lambda m: None, report_dir=tmp_path):
            pass
    assert caught.value.splats[0].kind == kind
    assert words in (tmp_path / "splats.txt").read_text()
    assert not kmod.is_loaded(buggy_target, "wq_buggy")


def test_a_module_without_bugs_loads_clean_on_the_same_boot(buggy_target):
    with kmod.loaded(buggy_target, "wq_buggy", {"bug": 0}, progress=lambda m: None) as module:
        pass
    assert module.splats == [] and module.leak_check


@pytest.fixture(scope="module")
def buggy_target(monkeypatch_module) -> LabTarget:
    """The test-only module's own boot of the debug kernel: a bug it injects (lockdep and debug
    objects report only the first few of a boot) never hides a finding of another test."""
    monkeypatch_module.setenv("WQKIT_EXPERIMENTS", str(BUGGY_MODULE))
    with LabSession(kernel=lab_kernel("debug")) as session:
        yield LabTarget(session=session)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch
