"""Studies without the lab: the grid, its checks, the order, the index and the statistics."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wqkit.analysis.study import df_effects
from wqkit.errors import WqkitError
from wqkit.paths import SOURCE_DIR
from wqkit.study.engine import ClusterChoice, local_slots, prepare
from wqkit.study.index import levels, read_index
from wqkit.study.order import boots, schedule
from wqkit.study.spec import read_study

GRID = """
name = "grid"
seed = 11
boots = 3
runs_per_boot = 2
[[experiment]]
name = "insert_exec"
params = { nr = 500 }
[[experiment]]
name = "exec_time_pred"
params = { nr = 300 }
[factors]
wq_flags = ["percpu", "unbound", "highpri"]
serial = [false, true]
kernel = ["stock"]
"""


def _study(tmp_path, text=GRID, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return read_study(path)


def test_the_grid_is_every_combination_a_factor_applies_to(tmp_path):
    study = _study(tmp_path)
    # insert_exec takes wq_flags and serial: 3 × 2; exec_time_pred takes wq_flags only: 3.
    assert sum(p.experiment == "insert_exec" for p in study.points) == 6
    assert sum(p.experiment == "exec_time_pred" for p in study.points) == 3
    assert len({p.key for p in study.points}) == len(study.points) == 9
    assert study.runs == 9 * 3 * 2 and study.labs == ["kernel=stock"]
    point = next(p for p in study.points if p.key == "insert_exec|kernel=stock|serial=true|wq_flags=unbound")
    assert dict(point.params) == {"nr": 500, "wq_flags": "unbound", "serial": True} and point.kernel == "stock"


@pytest.mark.parametrize("change, message", [
    (("nr = 500", "nr = 0"), r"point insert_exec\|.*: wq_insert_exec: nr=0 is out of range"),
    (('"highpri"]', '"sideways"]'), r"point .*wq_flags=sideways.*unknown workqueue flag 'sideways'"),
    (("kernel = [", "max_actve = [1]\nkernel = ["),
     "factor max_actve is neither kernel nor cpus nor replicate nor topology \\(lab.NAME\\) nor a parameter"),
    (("boots = 3", "boots = 1"), r"boots=1 is out of range: a whole number from 2 to 1000 \(an interval needs two"),
    (("runs_per_boot = 2", "runs_per_boot = 0"), "runs_per_boot=0 is out of range"),
    (("runs_per_boot = 2", "runs_per_boot = 1.5"), "runs_per_boot=1.5 is out of range"),
    (("boots = 3", "repetitions = 3"), "give boots and runs_per_boot, or repetitions"),
    (('name = "exec_time_pred"\nparams = { nr = 300 }', 'name = "insert_exec"\nparams = { nr = 300 }'),
     r"two \[\[experiment\]\] tables make the same point insert_exec\|.* \(they differ in nr: make that a factor"),
    (('name = "exec_time_pred"', 'name = "nope"'), "unknown experiment or tracer 'nope'"),
    (('serial = [false, true]', 'serial = [true, true]'), "factor serial: a level is given twice"),
])
def test_bad_levels_are_one_line_errors_naming_the_point(tmp_path, change, message):
    with pytest.raises(WqkitError, match=message):
        _study(tmp_path, GRID.replace(*change))


def test_the_order_is_blocks_of_boots_randomised_and_reproducible(tmp_path):
    study = _study(tmp_path, GRID.replace('kernel = ["stock"]', 'kernel = ["stock", "6.1"]'))
    runs = schedule(study)
    assert [r.key for r in runs] == [r.key for r in schedule(study)]
    assert len({r.key for r in runs}) == study.runs
    block = len(study.points) * study.runs_per_boot
    for number in range(study.boots):       # each block boots each lab once and runs its points twice in it
        part = runs[number * block:(number + 1) * block]
        assert {r.block for r in part} == {number}
        assert sorted(r.point.key for r in part) == sorted(p.key for p in study.points for _ in range(2))
        grouped = boots(part)
        assert len(grouped) == 2 and all(len({r.point.lab for r in g}) == 1 for g in grouped)
        assert [r for g in grouped for r in g] == part, "a boot's runs come one after the other"
    assert len({r.boot for r in runs}) == study.boots * 2
    assert [r.point.key for r in runs[:9]] != [p.key for p in study.points if p.kernel == runs[0].point.kernel]


def test_old_study_files_read_repetitions_as_boots_of_one_run(tmp_path):
    study = _study(tmp_path, GRID.replace("boots = 3\nruns_per_boot = 2", "repetitions = 4"))
    assert (study.boots, study.runs_per_boot) == (4, 1)


def test_a_replicate_splits_boots_and_changes_nothing_else(tmp_path):
    study = _study(tmp_path, GRID + 'replicate = ["A", "B"]\n')
    assert study.labs == ["kernel=stock|replicate=A", "kernel=stock|replicate=B"]
    assert all("replicate" not in p.params for p in study.points)
    runs = schedule(study)
    for group in boots(runs):
        assert len({r.point.levels["replicate"] for r in group}) == 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), boots_=st.integers(2, 8), per_boot=st.integers(1, 3))
def test_every_level_s_mean_position_is_within_one_block_of_another_s(tmp_path_factory, seed, boots_, per_boot):
    tmp = tmp_path_factory.mktemp("order")
    study = _study(tmp, GRID.replace("seed = 11", f"seed = {seed}").replace(
        "boots = 3\nruns_per_boot = 2", f"boots = {boots_}\nruns_per_boot = {per_boot}"))
    runs = schedule(study)
    for factor in ("wq_flags", "serial"):
        position: dict = {}
        for run in runs:
            if factor in run.point.levels:
                position.setdefault(run.point.levels[factor], []).append(run.order)
        means = [np.mean(p) for p in position.values()]
        assert max(means) - min(means) < len(study.points) * study.runs_per_boot


def test_the_index_starts_pending_and_a_changed_grid_is_not_resumed(tmp_path):
    study = _study(tmp_path)
    index = prepare(study, tmp_path / "out", resume=False)
    assert (index["status"] == "pending").all() and len(index) == study.runs
    again = read_index(tmp_path / "out")
    assert sorted(again["order"]) == list(range(study.runs))
    assert set(levels(again).columns) == {"wq_flags", "serial", "kernel"}
    with pytest.raises(WqkitError, match="holds a study already"):
        prepare(study, tmp_path / "out", resume=False)
    assert len(prepare(study, tmp_path / "out", resume=True)) == study.runs
    for change in (("seed = 11", "seed = 12"), ("nr = 500", "nr = 5000"), ("runs_per_boot = 2", "runs_per_boot = 3")):
        other = _study(tmp_path, GRID.replace(*change), "other.toml")
        assert other.digest != study.digest, change
        with pytest.raises(WqkitError, match="other points, parameters, replication or seed"):
            prepare(other, tmp_path / "out", resume=True)


def test_a_graph_s_shape_is_part_of_the_study_s_identity(tmp_path):
    text = 'boots = 2\n[[experiment]]\nname = "kserver"\nshape = "fork-join:width=4,depth=1"\n'
    assert _study(tmp_path, text).digest != _study(tmp_path, text.replace("width=4", "width=5")).digest


def test_a_directory_with_runs_but_no_study_json_is_not_taken_for_a_fresh_study(tmp_path):
    study = _study(tmp_path)
    prepare(study, tmp_path / "out", resume=False)
    (tmp_path / "out" / "study.json").unlink()
    with pytest.raises(WqkitError, match="holds study.parquet but no study.json"):
        prepare(study, tmp_path / "out", resume=False)


def test_oversubscription_is_refused_unless_allowed(tmp_path, monkeypatch):
    study = _study(tmp_path)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert local_slots(study, ClusterChoice()) == 1
    with pytest.raises(WqkitError, match="--allow-oversubscribe"):
        local_slots(study, ClusterChoice(slots=2))
    assert local_slots(study, ClusterChoice(slots=2, allow_oversubscribe=True)) == 2
    assert local_slots(study, ClusterChoice(slots=2, allow_oversubscribe=True, exclusive=True)) == 1


@pytest.mark.parametrize("path", sorted((SOURCE_DIR / "studies").glob("*.toml")), ids=lambda p: p.stem)
def test_the_shipped_studies_are_valid(path):
    study = read_study(path)
    assert study.name == path.stem and len(study.points) >= 2 and study.boots >= 3
    assert {f.removeprefix("lab.") for f in study.factors} & {"kernel", "replicate"}


TRACES = """
name = "tracers"
boots = 2
[[experiment]]
name = "trace_workers"
params = { kind = "creation", nr_work_max = 24 }
[[experiment]]
name = "trace_latency"
params = { during = "insert_exec", nr = 300 }
[factors]
engine = ["bpftrace", "bcc"]
serial = [false, true]
"""


def test_tracers_are_study_experiments_checked_before_boot(tmp_path):
    study = _study(tmp_path, TRACES)
    # the creation trace takes engine (not serial, an insert_exec parameter): 2 points; the latency
    # trace takes engine and, through its during experiment, serial: 4 points.
    assert sorted(p.key for p in study.points if p.experiment == "trace_workers") == \
        ["trace_workers|engine=bcc", "trace_workers|engine=bpftrace"]
    latency = [p for p in study.points if p.experiment == "trace_latency"]
    assert len(latency) == 4 and all(p.params["during"] == "insert_exec" and p.params["nr"] == 300 for p in latency)


@pytest.mark.parametrize("change, message", [
    (('kind = "creation"', 'kind = "birth"'), r"point trace_workers\|engine=bpftrace: trace_workers: kind='birth' is not one of creation, die"),
    (("nr_work_max = 24", "nr_work_max = 0"), r"point trace_workers\|.*nr_work_max=0 is out of range"),
    (('"bcc"]', '"dtrace"]'), r"point trace_workers\|engine=dtrace: trace_workers: engine='dtrace' is not one of bpftrace, bcc, both"),
    (('during = "insert_exec", ', ''), "factor serial is neither kernel nor cpus nor replicate nor topology \\(lab.NAME\\) nor a parameter"),
    (("nr = 300", "nr = 300, max_pending = 0"), r"point trace_latency\|.*max_pending=0 is out of range"),
    (("nr = 300", "nr = -1"), r"point trace_latency\|.*nr=-1 is out of range"),
])
def test_bad_tracer_points_are_one_line_errors_naming_the_point(tmp_path, change, message):
    with pytest.raises(WqkitError, match=message):
        _study(tmp_path, TRACES.replace(*change))


def test_df_study_reads_a_worker_trace_as_its_first_engine_s_create_worker_durations(tmp_path):
    """A study run that is a trace compares what `wqkit trace workers` prints for its first engine."""
    import shutil

    from wqkit.analysis.load import load_run
    from wqkit.analysis.study import df_study
    from wqkit.analysis.workers import summary
    from wqkit.study.index import write_index

    text = TRACES.split("[[experiment]]\nname = \"trace_latency\"")[0] + '[factors]\nengine = ["bpftrace", "bcc"]\n'
    study = _study(tmp_path, text)
    out = tmp_path / "out"
    index = prepare(study, out, resume=False)
    reference = SOURCE_DIR / "data" / "traces" / "trace-workers-creation-20261201-073336"
    for key in index.index:
        shutil.copytree(reference, out / "runs" / key.replace("|", "_"))
        index.loc[key, ["status", "run_dir"]] = ["ok", "runs/" + key.replace("|", "_")]
    write_index(out, index)
    table = df_study(out)
    trace = load_run(reference)
    expected = summary(trace.meta, trace.events)      # the first engine traced: bpftrace
    assert len(table) == 4 and (table["samples"] == expected["count"]).all()     # 2 engines × 2 boots
    assert table["p50"].tolist() == pytest.approx([expected["p50_ns"]] * 4)
    assert table["makespan"].isna().all()


def test_a_study_s_runs_do_not_pass_for_the_reference_runs_beside_it(tmp_path):
    import shutil

    from wqkit.analysis.load import find_runs

    reference = sorted((SOURCE_DIR / "data").glob("insert_exec-*"))[0]
    shutil.copytree(reference, tmp_path / reference.name)
    study = tmp_path / "studies" / "s"
    shutil.copytree(reference, study / "runs" / "insert_exec-newer")
    (study / "study.json").write_text("{}")
    assert find_runs(tmp_path, recursive=True) == [tmp_path / reference.name]
    assert find_runs(study, recursive=True) == [study / "runs" / "insert_exec-newer"], "a study read as itself"


def test_effects_within_strata_find_what_a_large_other_factor_swamps_when_pooled():
    """serial changes latency 100×, flags 1.3×: pooled over serial, flags' ratio interval is wide;
    within each serial level it is found, stratum by stratum, in the study file's order."""
    rng = np.random.default_rng(3)
    rows = [{"flags": flags, "serial": serial,
             "p50": rng.lognormal(np.log(10_000 * (1.3 if flags == "b" else 1) * (1 if serial else 100)), 0.05)}
            for flags in "ab" for serial in (True, False) for _ in range(8)]
    table = pd.DataFrame(rows)
    table.attrs["factors"] = {"flags": ["a", "b"], "serial": [False, True]}
    within = df_effects(table, "flags", run_stats=("p50",), within=["serial"])
    assert list(dict.fromkeys(within["stratum"])) == ["serial=false", "serial=true"]
    b = within[within["level"] == "b"]
    assert (b["runs"] == 8).all() and ((b["ratio_low"] > 1.15) & (b["ratio_high"] < 1.5)).all()
    pooled = df_effects(table, "flags", run_stats=("p50",)).query("level == 'b'").iloc[0]
    assert pooled["stratum"] == "all" and pooled["ratio_high"] - pooled["ratio_low"] > 4 * (
        b["ratio_high"] - b["ratio_low"]).max()
    with pytest.raises(WqkitError, match="cannot hold 'flags' fixed when comparing flags"):
        df_effects(table, "flags", within=["flags"])


SHIPPED = sorted((SOURCE_DIR / "studies").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_study_ran_one_vm_per_slot_and_each_lab_level_in_three_boots_or_more(path):
    """What a reviewer checks of data/studies/NAME: no run shared the host with more VMs than the
    study had slots, and every level of a lab factor (kernel, replicate) spans ≥ 3 boots of its own."""
    import json

    from wqkit.analysis.study import df_study
    from wqkit.study.spec import LAB_FACTORS

    result = SOURCE_DIR / "data" / "studies" / path.stem
    table = df_study(result)
    for run_dir in table["run_dir"]:
        meta = json.loads((result / run_dir / "meta.json").read_text())
        assert meta["host"]["vms_running_start"] <= meta["study"]["slots_on_host"], run_dir
    for factor in (f for f in table.columns if f.removeprefix("lab.") in LAB_FACTORS):
        boots_per_level = table.groupby(table[factor].map(str))["boot"].agg(set)
        assert all(len(ids) >= 3 for ids in boots_per_level), boots_per_level
        assert not set.intersection(*boots_per_level) if len(boots_per_level) > 1 else True


def test_the_shipped_a_a_study_shows_no_effect_that_survives():
    """The same kernel and parameters on both arms, in boots of their own: nothing may survive
    Holm's adjustment (a false positive the study's 5 % family-wise rate allows once in 20)."""
    from wqkit.analysis.study import df_study, study_effects

    found = list(study_effects(df_study(SOURCE_DIR / "data" / "studies" / "aa_latency")))
    replicate = next(effects for _, factor, effects, _ in found if factor == "replicate")
    compared = replicate[replicate["design"] != "baseline"]
    assert len(compared) == 6 and (compared["boots"] == 6).all()        # 2 loads × p50, p90, p99
    assert not compared["survives"].any(), compared[["stratum", "stat", "ratio", "p_value", "p_adjusted"]]


def test_the_shipped_scope_study_places_every_item_and_marks_what_6_12_measured_instead():
    """data/studies/affinity_scopes: each level's places add up to all of its items over 3 boots, a
    cpu-scope item on the 2-CPU shape never runs outside the machine, and test_workqueue's
    cache_shard line is cache on 6.12 and cache_shard on 7.3."""
    from wqkit.analysis.placement import PLACES
    from wqkit.analysis.study import df_study, study_benchmarks, study_placements

    result = SOURCE_DIR / "data" / "studies" / "affinity_scopes"
    table = df_study(result)
    placement = study_placements(result, table)["insert_exec"]
    assert len(placement) == 2 * 3 * 6 and (placement["boots"] == 3).all()
    assert placement[list(PLACES)].sum(axis=1).round(9).eq(1).all()
    flat = placement[placement["lab.topology"] == "flat2"]
    assert (flat[["same node", "elsewhere"]] == 0).all().all()      # 2 CPUs: one cache, one node
    bench = study_benchmarks(result, table)["test_workqueue"]
    shard = bench[bench["scope"] == "cache_shard"].set_index(["lab.kernel", "lab.topology"])["measured_as"]
    assert set(shard.xs("6.12", level=0)) == {"cache"} and set(shard.xs("7.3", level=0)) == {"cache_shard"}
    assert (bench["boots"] == 3).all() and (bench["items_per_s_low"] <= bench["items_per_s"]).all()


def test_the_plan_s_runs_per_boot_and_boots_follow_kalibera_and_jones():
    from scipy import stats as scipy_stats

    from wqkit.analysis.plan import boots_needed, optimal_runs_per_boot

    # r* = sqrt(c_boot σ²_run / (c_run σ²_boot)): boots 10× dearer than runs, runs 10× noisier
    assert optimal_runs_per_boot(0.01, 0.1, 20.0, 2.0) == 10
    assert optimal_runs_per_boot(0.04, 0.0, 20.0, 2.0) == 1           # runs of a boot agree: one is enough
    b = boots_needed(0.04, 0.01, 2, 0.05)
    half = lambda n: scipy_stats.t.ppf(0.975, 2 * n - 2) * np.sqrt(2 * (0.04 + 0.01 / 2) / n)
    assert half(b) <= np.log1p(0.05) < half(b - 1)


def test_study_plan_reads_a_shipped_study_as_its_pilot(capsys):
    from wqkit.cli import main

    code = main(["study", "plan", str(SOURCE_DIR / "studies" / "flags_latency.toml"), "--pilot",
                 str(SOURCE_DIR / "data" / "studies" / "flags_latency"), "--half-width", "0.1"])
    out = capsys.readouterr().out
    assert code == 0 and "runs_per_boot" in out and "the whole study, every comparison at ±10%" in out
    assert main(["study", "plan", str(SOURCE_DIR / "studies" / "flags_latency.toml"), "--pilot",
                 str(SOURCE_DIR / "data" / "studies" / "flags_latency"), "--half-width", "2"]) != 0
    assert "--half-width 2.0 is not a fraction" in capsys.readouterr().err


def test_a_paired_comparison_is_planned_from_its_own_differences_not_the_boots_spread():
    """Within boots, the boot's own level cancels: a comparison whose boots differ by σ 0.5 but
    whose per-boot difference is tight needs few boots; the same numbers, independent, many."""
    from wqkit.analysis.plan import df_plan

    rng = np.random.default_rng(4)
    rows = []
    for boot in range(6):
        offset = rng.normal(0, 0.5)
        for serial, scale in ((False, 1.0), (True, 1.3)):
            rows += [{"experiment": "insert_exec", "serial": serial, "boot": boot, "boot_seconds": 10.0,
                      "duration_s": 2.0, "p50": 1e4 * scale * np.exp(offset + rng.normal(0, 0.03))} for _ in range(2)]
    pilot = pd.DataFrame(rows).assign(**{s: np.nan for s in ("p90", "p99", "makespan", "wait_p50", "wait_p90",
                                                             "wait_p99", "run_p50", "run_p90", "run_p99")})
    pilot.attrs["factors"] = {"serial": [False, True]}
    plan = df_plan(pilot, 0.05).iloc[0]
    assert plan["design"] == "paired" and plan["boots"] <= 4 and plan["sd_boot"] < 0.1


def test_a_task_graph_run_s_waits_run_times_and_makespan_are_separate_statistics():
    """kserver records a wait and a run time per task: a study compares them apart (pooled, their
    p50 and p90 described a mixture), and its makespan is the one df_configs shows."""
    from wqkit.analysis.kserver import df_configs, df_tasks
    from wqkit.analysis.load import load_run
    from wqkit.analysis.study import run_statistics

    runs = SOURCE_DIR / "data" / "studies" / "kserver_flags" / "runs"
    run = load_run(next(p for p in sorted(runs.iterdir()) if (p / "graph.txt").is_file()))
    stats = run_statistics(run)
    tasks = df_tasks(run)
    assert stats["wait_p50"] == pytest.approx(np.percentile(tasks["wait_ns"], 50))
    assert stats["run_p99"] == pytest.approx(np.percentile(tasks["run_ns"], 99))
    assert stats["makespan"] == pytest.approx(df_configs([run])["p50_makespan_ns"].iloc[0])
    assert np.isnan(stats["p50"]) and stats["samples"] == len(tasks)


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    from wqkit.paths import write_atomically

    path = tmp_path / "study.json"
    write_atomically(path, '{"old": true}')

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, '{"new": ' + "1" * 100_000 + "}")
    assert path.read_text() == '{"old": true}'


def test_a_host_without_a_study_s_kernel_or_with_another_wqkit_is_named_before_anything_boots():
    from wqkit import __version__
    from wqkit.study.engine import _check_hosts
    from wqkit.study.worker import host_facts

    mine = host_facts(["no-such-kernel-9.9"])
    assert mine["missing"].keys() == {"no-such-kernel-9.9"} and mine["wqkit"] == __version__
    assert mine["cores"] >= 1 and mine["accel"] in ("kvm", "kvm?", "tcg")
    good = {**mine, "missing": {}, "host": "lab-a"}

    class Cluster:       # two workers; the second host lacks 6.1, or runs another wqkit
        def __init__(self, second):
            self.second = second

        def run(self, function, *args):
            assert function is host_facts
            return {"tcp://a:1": good, "tcp://b:1": {**good, "host": "lab-b", **self.second}}

    with pytest.raises(WqkitError, match=r"host lab-b \(worker tcp://b:1\) cannot boot kernel level '6.1': no "):
        _check_hosts(Cluster({"missing": {"6.1": "no provisioned kernel of series 6.1"}}), ["6.1", "stock"])
    with pytest.raises(WqkitError, match=r"host lab-b \(worker tcp://b:1\) runs wqkit 0.0.9 and this client"):
        _check_hosts(Cluster({"wqkit": "0.0.9"}), ["stock"])
    assert _check_hosts(Cluster({}), ["stock"])["tcp://b:1"]["host"] == "lab-b"


KSERVER_CPUS = """
boots = 2
[[experiment]]
name = "kserver"
shape = "fork-join:width=4,depth=1"
[[experiment]]
name = "insert_exec"
[factors]
cpus = ["0", "0,1"]
"lab.cpus" = [2, 4]
"""


def test_lab_factors_are_lab_names_and_kserver_s_cpus_is_a_factor_like_any_other(tmp_path):
    """``lab.cpus`` is the lab's CPUs; ``cpus`` is kserver's task CPUs (its parameter), which a study
    could not vary while the lab's factor took the name. Alone, ``cpus`` still means the lab's."""
    study = _study(tmp_path, KSERVER_CPUS)
    kserver = [p for p in study.points if p.experiment == "kserver"]
    assert sorted((p.params["cpus"], p.cpus) for p in kserver) == [("0", 2), ("0", 4), ("0,1", 2), ("0,1", 4)]
    assert all(p.lab == f"lab.cpus={p.cpus}" for p in study.points)
    insert_exec = [p for p in study.points if p.experiment == "insert_exec"]
    assert sorted(p.cpus for p in insert_exec) == [2, 4] and all("cpus" not in p.params for p in insert_exec)
    # Groups: each lab CPU count boots once a block for both experiments.
    assert len(study.labs) == 2
    old = _study(tmp_path, 'boots = 2\n[[experiment]]\nname = "insert_exec"\n[factors]\ncpus = [2, 4]\n')
    assert sorted(p.cpus for p in old.points) == [2, 4] and all(p.lab.startswith("cpus=") for p in old.points)
    with pytest.raises(WqkitError, match=r"factor lab.memory: the lab's factors are lab.kernel, lab.cpus, "
                                         "lab.replicate, lab.topology"):
        _study(tmp_path, KSERVER_CPUS.replace('"lab.cpus"', '"lab.memory"'))
