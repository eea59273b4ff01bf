"""Studies without the lab: the grid, its checks, the order, the index and the statistics."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from wqkit.analysis.study import df_effects, factors
from wqkit.errors import WqkitError
from wqkit.paths import SOURCE_DIR
from wqkit.study.engine import ClusterChoice, local_slots, prepare
from wqkit.study.index import levels, read_index
from wqkit.study.order import schedule
from wqkit.study.spec import read_study

GRID = """
name = "grid"
seed = 11
repetitions = 3
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
    assert study.runs == 27
    point = next(p for p in study.points if p.key == "insert_exec|kernel=stock|serial=true|wq_flags=unbound")
    assert dict(point.params) == {"nr": 500, "wq_flags": "unbound", "serial": True} and point.kernel == "stock"


@pytest.mark.parametrize("change, message", [
    (("nr = 500", "nr = 0"), r"point insert_exec\|.*: wq_insert_exec: nr=0 is out of range"),
    (('"highpri"]', '"sideways"]'), r"point .*wq_flags=sideways.*unknown workqueue flag 'sideways'"),
    (("kernel = [", "max_actve = [1]\nkernel = ["), "factor max_actve is neither kernel nor cpus nor a parameter"),
    (("repetitions = 3", "repetitions = 0"), "repetitions must be a positive integer"),
    (('name = "exec_time_pred"', 'name = "nope"'), "unknown experiment 'nope'"),
    (('serial = [false, true]', 'serial = [true, true]'), "factor serial: a level is given twice"),
])
def test_bad_levels_are_one_line_errors_naming_the_point(tmp_path, change, message):
    with pytest.raises(WqkitError, match=message):
        _study(tmp_path, GRID.replace(*change))


def test_the_order_is_blocked_randomised_and_reproducible(tmp_path):
    study = _study(tmp_path)
    runs = schedule(study)
    assert [r.key for r in runs] == [r.key for r in schedule(study)]
    assert len({r.key for r in runs}) == study.runs
    block = len(study.points)
    for repetition in range(study.repetitions):   # each block holds every point once
        part = runs[repetition * block:(repetition + 1) * block]
        assert {r.repetition for r in part} == {repetition} and len({r.point.key for r in part}) == block
    assert [r.point.key for r in runs[:block]] != [p.key for p in study.points], "not the file's order"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), repetitions=st.integers(1, 8))
def test_every_level_s_mean_position_is_within_one_block_of_another_s(tmp_path_factory, seed, repetitions):
    tmp = tmp_path_factory.mktemp("order")
    study = _study(tmp, GRID.replace("seed = 11", f"seed = {seed}").replace("repetitions = 3",
                                                                            f"repetitions = {repetitions}"))
    runs = schedule(study)
    for factor in ("wq_flags", "serial"):
        position: dict = {}
        for run in runs:
            if factor in run.point.levels:
                position.setdefault(run.point.levels[factor], []).append(run.order)
        means = [np.mean(p) for p in position.values()]
        assert max(means) - min(means) < len(study.points)


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
    other = _study(tmp_path, GRID.replace("seed = 11", "seed = 12"), "other.toml")
    with pytest.raises(WqkitError, match="another grid or seed"):
        prepare(other, tmp_path / "out", resume=True)


def test_oversubscription_is_refused_unless_allowed(tmp_path, monkeypatch):
    study = _study(tmp_path)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert local_slots(study, ClusterChoice()) == 1
    with pytest.raises(WqkitError, match="--allow-oversubscribe"):
        local_slots(study, ClusterChoice(slots=2))
    assert local_slots(study, ClusterChoice(slots=2, allow_oversubscribe=True)) == 2
    assert local_slots(study, ClusterChoice(slots=2, allow_oversubscribe=True, exclusive=True)) == 1


def _synthetic(rng, shift: float, runs: int = 12) -> pd.DataFrame:
    """Per-run statistics of two levels; level b's are ``shift`` times level a's in expectation."""
    a = rng.lognormal(np.log(10_000), 0.15, runs)
    b = rng.lognormal(np.log(10_000), 0.15, runs) * shift
    frame = pd.DataFrame({"flags": ["a"] * runs + ["b"] * runs, "p50": np.r_[a, b]})
    return frame.assign(p90=frame["p50"] * 1.5, p99=frame["p50"] * 3)


def test_the_ratio_interval_covers_a_known_shift_at_about_its_stated_rate():
    rng = np.random.default_rng(5)
    true_ratio = 1.2 * np.exp(0.15**2 / 2) / np.exp(0.15**2 / 2)     # means of lognormals scale alike
    draws, covered = 150, 0
    for draw in range(draws):
        effects = df_effects(_synthetic(rng, 1.2), "flags", run_stats=("p50",), seed=draw)
        row = effects[effects["level"] == "b"].iloc[0]
        covered += row["ratio_low"] <= true_ratio <= row["ratio_high"]
    assert 0.88 <= covered / draws <= 0.995, covered / draws       # stated: 95 %


def test_mean_intervals_and_the_rank_test_agree_with_scipy():
    rng = np.random.default_rng(9)
    table = _synthetic(rng, 1.5)
    effects = df_effects(table, "flags")
    assert factors(table) == ["flags"]
    assert effects.attrs["baseline"] == "a" and set(effects["stat"]) == {"p50", "p90", "p99"}
    b = effects[(effects["level"] == "b") & (effects["stat"] == "p50")].iloc[0]
    a_values = table.loc[table["flags"] == "a", "p50"].to_numpy()
    b_values = table.loc[table["flags"] == "b", "p50"].to_numpy()
    assert b["runs"] == 12 and b["value_ns"] == pytest.approx(b_values.mean())
    assert b["p_value"] == pytest.approx(scipy_stats.mannwhitneyu(b_values, a_values).pvalue)
    assert b["p_value"] < 0.01 and b["ratio_low"] > 1.2           # a 1.5× shift is found
    reference = scipy_stats.bootstrap((b_values,), np.mean, confidence_level=0.95, n_resamples=4000,
                                      method="BCa", random_state=np.random.default_rng(0)).confidence_interval
    assert (b["ci_low_ns"], b["ci_high_ns"]) == pytest.approx((reference.low, reference.high))
    with pytest.raises(WqkitError, match="no level 'c'"):
        df_effects(table, "flags", baseline="c")


@pytest.mark.parametrize("path", sorted((SOURCE_DIR / "studies").glob("*.toml")), ids=lambda p: p.stem)
def test_the_shipped_studies_are_valid(path):
    study = read_study(path)
    assert study.name == path.stem and len(study.points) >= 4 and study.repetitions >= 3
    assert "kernel" in study.factors


TRACES = """
name = "tracers"
repetitions = 2
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
    (('kind = "creation"', 'kind = "birth"'), r"point trace_workers\|engine=bpftrace: unknown measurement 'birth'"),
    (("nr_work_max = 24", "nr_work_max = 0"), r"point trace_workers\|.*nr_work_max=0 is out of range"),
    (('"bcc"]', '"dtrace"]'), r"point trace_workers\|engine=dtrace: unknown engine 'dtrace'"),
    (('during = "insert_exec", ', ''), "trace_latency: give the experiment it traces as params.during"),
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
    study = _study(tmp_path, text.replace("repetitions = 2", "repetitions = 1"))
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
    assert len(table) == 2 and (table["samples"] == expected["count"]).all()
    assert table["p50"].tolist() == pytest.approx([expected["p50_ns"]] * 2)
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
