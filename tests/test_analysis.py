"""The analysis on synthetic samples of known distribution."""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from wqkit import analysis
from wqkit.analysis.synthetic import write_synthetic_run
from wqkit.analysis.units import significant, unit_for
from wqkit.errors import WqkitError

RNG = np.random.default_rng(7)


def make(tmp_path, cycles, name="run", **kw):
    return analysis.load_run(write_synthetic_run(tmp_path / name, np.asarray(cycles), **kw))


def test_ns_conversion_is_exact_and_subtracts_the_overhead(tmp_path):
    run = make(tmp_path, [2026, 4026, 2_000_026], tsc_khz=2_000_000, overhead_cycles=26)
    # (cycles - overhead) * 10^6 / tsc_khz: 2000 cycles at 2 GHz are 1000 ns.
    assert run.ns.tolist() == [1000.0, 2000.0, 1_000_000.0]
    assert analysis.df_summary([run]).loc["run", "overhead_cycles"] == 26


def test_percentiles_of_a_known_distribution(tmp_path):
    scale = 50_000.0  # exponential, in cycles; tsc_khz 1e6 makes 1 cycle = 1 ns
    run = make(tmp_path, RNG.exponential(scale, 400_000).astype(np.int64) + 1, tsc_khz=1_000_000)
    row = analysis.df_summary([run]).loc["run"]
    for name, q in (("p50_ns", 0.5), ("p90_ns", 0.9), ("p99_ns", 0.99)):
        expected = -scale * math.log(1 - q)
        assert row[name] == pytest.approx(expected, rel=0.02), name
    assert row["mean_ns"] == pytest.approx(scale, rel=0.01)
    assert row["cv"] == pytest.approx(1.0, rel=0.02)
    assert row["count"] == 400_000
    assert row["p50_ci_low_ns"] < scale * math.log(2) < row["p50_ci_high_ns"]
    assert row["p50_ci_high_ns"] - row["p50_ci_low_ns"] < 0.02 * row["p50_ns"]


def test_small_run_median_ci_by_resampling(tmp_path):
    run = make(tmp_path, RNG.normal(10_000, 500, 1001).astype(np.int64), tsc_khz=1_000_000)
    low, high = analysis.median_ci(run.sorted_ns)
    assert low < 10_000 < high and high - low < 200


def test_outliers_are_found_where_planted(tmp_path):
    cycles = RNG.normal(10_000, 100, 50_000).astype(np.int64)
    planted = [17, 4_000, 33_333, 49_999]
    cycles[planted] = 1_000_000
    outliers = analysis.df_outliers(make(tmp_path, cycles, tsc_khz=1_000_000))
    assert outliers["seq"].tolist() == planted
    assert 10_000 < outliers.attrs["threshold_ns"] < 20_000


def test_per_cpu_breakdown_and_migration_rate(tmp_path):
    n = 10_000
    queue = np.zeros(n)
    execute = np.where(np.arange(n) < 2_500, 1, 0)
    cycles = np.where(execute == 1, 20_000, 10_000)
    run = make(tmp_path, cycles, tsc_khz=1_000_000, cpu_queue=queue, cpu_exec=execute)
    table = analysis.df_per_cpu(run)
    assert table.loc[(0, 0), "count"] == 7_500 and table.loc[(0, 1), "count"] == 2_500
    assert table.loc[(0, 1), "p50_ns"] == 20_000 and table.loc[(0, 0), "p50_ns"] == 10_000
    assert analysis.migration_rate(run) == 0.25


def test_comparison_ratios(tmp_path):
    base = make(tmp_path, np.full(1000, 1000), name="a", tsc_khz=1_000_000)
    slower = make(tmp_path, np.full(1000, 3000), name="b", tsc_khz=1_000_000)
    table = analysis.df_compare([base, slower])
    assert table.loc["b", "p50_ratio"] == 3.0 and table.loc["a", "p50_ratio"] == 1.0


def test_plots_name_kernel_accelerator_and_warn_for_tcg(tmp_path):
    run = make(tmp_path, RNG.integers(1000, 5000, 30_000), accel="tcg")
    for fig in (analysis.plot_histogram([run]), analysis.plot_cdf([run]), analysis.plot_ccdf([run]),
                analysis.plot_timeseries(run), analysis.plot_per_cpu(run)):
        title = fig._suptitle.get_text()
        assert "synthetic under TCG" in title and "emulation timings" in title and "nr=30000" in title


def test_large_timeseries_is_decimated(tmp_path):
    run = make(tmp_path, RNG.integers(1000, 5000, 200_000))
    fig = analysis.plot_timeseries(run)
    assert max(len(line.get_xdata()) for line in fig.axes[0].get_lines()) <= 4000


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "meta.json").write_text("{"), "meta.json: corrupt JSON"),
    (lambda p: (p / "meta.json").unlink(), "not a run directory (no meta.json)"),
    (lambda p: (p / "samples.parquet").write_bytes((p / "samples.parquet").read_bytes()[:300]),
     "samples.parquet: unreadable Parquet"),
    (lambda p: (p / "samples.parquet").unlink(), "samples.parquet: missing"),
])
def test_damaged_run_directories_give_one_line_errors(tmp_path, damage, message):
    path = write_synthetic_run(tmp_path / "run", RNG.integers(1000, 5000, 5000))
    damage(path)
    with pytest.raises(WqkitError, match=re.escape(message)) as info:
        analysis.load_run(path)
    assert "\n" not in str(info.value)


def fail(path, keep_tsc=True, error="insert_exec still ran after 10 s; stopped"):
    meta = json.loads((path / "meta.json").read_text())
    meta.update(status="failed", error=error)
    if not keep_tsc:
        meta.pop("tsc_khz")
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def test_failed_runs_are_left_out_by_default_and_named(tmp_path):
    write_synthetic_run(tmp_path / "good", RNG.integers(1000, 5000, 2000))
    fail(write_synthetic_run(tmp_path / "timed-out", RNG.integers(1000, 5000, 300)))
    # A run that failed before measuring has no tsc_khz: it must not abort the others.
    fail(write_synthetic_run(tmp_path / "no-tsc", RNG.integers(1000, 5000, 10)), keep_tsc=False)
    runs = analysis.load_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    assert len(runs.notes) == 2 and all("left out failed run" in n for n in runs.notes)
    assert any("timed-out: insert_exec still ran after 10 s" in n for n in runs.notes)
    included = analysis.load_runs(tmp_path, include_failed=True)
    assert sorted(r.name for r in included) == ["good", "no-tsc", "timed-out"]
    assert "[FAILED]" in next(r for r in included if r.name == "timed-out").label
    table = analysis.df_summary_table([r for r in included if r.name != "no-tsc"])
    assert table.loc["timed-out", "status"] == "failed"


def test_an_unreadable_run_is_skipped_not_fatal(tmp_path):
    write_synthetic_run(tmp_path / "good", RNG.integers(1000, 5000, 2000))
    bad = write_synthetic_run(tmp_path / "bad", RNG.integers(1000, 5000, 2000))
    (bad / "samples.parquet").write_bytes(b"PAR1 truncated")
    runs = analysis.load_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    assert runs.notes == [f"skipped bad: {bad / 'samples.parquet'}: unreadable Parquet "
                          f"({runs.notes[0].split('unreadable Parquet (', 1)[1]}"]


def test_analyze_cli_names_left_out_runs_and_keeps_going(tmp_path):
    data = tmp_path / "data"
    write_synthetic_run(data / "good", RNG.integers(1000, 5000, 2000))
    fail(write_synthetic_run(data / "failed", RNG.integers(1000, 5000, 300)), keep_tsc=False)
    proc = subprocess.run([sys.executable, "-m", "wqkit.cli", "analyze", str(data), "--output-dir",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "left out failed run failed" in proc.stderr and "good" in proc.stdout
    assert "failed" not in pd.read_csv(tmp_path / "out" / "summary.csv")["run"].tolist()


@pytest.mark.parametrize("typical, unit, text", [
    (19_624_737.467122, "ms", "19.62"), (850.0, "ns", "850.0"), (12_345.678, "µs", "12.35"),
    (3.2e9, "s", "3.200")])
def test_durations_read_in_a_unit_that_fits(typical, unit, text):
    name, scale = unit_for([typical])
    assert name == unit and significant(typical / scale) == text


def test_summary_table_is_formatted_for_reading(tmp_path):
    run = make(tmp_path, RNG.normal(19_624_737, 50_000, 5000).astype(np.int64), tsc_khz=1_000_000)
    table = analysis.df_summary_table([run])
    assert "p50 (ms)" in table.columns and "p99.9 (ms)" in table.columns
    assert table.loc["run", "p50 (ms)"] == "19.62"
    for value in table.loc["run", [c for c in table.columns if c.endswith("(ms)")]]:
        digits = value.replace(",", "").replace(".", "").lstrip("-0")
        assert len(digits) == 4, value     # 4 significant digits, never 19624737.467122
    assert table.loc["run", "migrated"] == "0.0%"


def test_nonpositive_samples_are_counted_not_hidden(tmp_path):
    # Cross-CPU TSC skew can put t1 before t0: such samples stay in the statistics and are counted.
    cycles = np.array([1000] * 97 + [-50, -20, 0])
    cpu_exec = np.array([0] * 97 + [1, 1, 0])
    run = make(tmp_path, cycles, tsc_khz=1_000_000, cpu_exec=cpu_exec)
    row = analysis.df_summary([run]).loc["run"]
    assert (row["count"], row["nonpositive"], row["nonpositive_cross_cpu"], row["min_ns"]) == (100, 3, 2, -50)
    assert "3 samples ≤ 0 not on the log axis" in analysis.plot_histogram([run]).axes[0].get_xlabel()


def write_phases(path, stamps):
    pd.DataFrame({"seq": np.arange(len(stamps), dtype=np.uint32),
                  **{name: np.array([s[i] for s in stamps], dtype=np.uint64)
                     for i, name in enumerate(("queue", "insert", "activate", "wake", "start", "func"))}}
                 ).to_parquet(path / "phases.parquet", index=False)


def test_phases_split_the_wait_between_the_kernels_stamps(tmp_path):
    # tsc_khz 10^6: 1 cycle = 1 ns. Item 0 went straight to the worklist and woke a worker;
    # item 1 waited on the inactive list (activate) and no worker was woken for it.
    path = write_synthetic_run(tmp_path / "run", np.array([1000, 5000]), tsc_khz=1_000_000)
    write_phases(path, [(100, 150, 0, 170, 600, 640), (200, 260, 3000, 0, 3900, 3950)])
    run = analysis.load_run(path)
    phases = analysis.df_phases(run)
    assert phases.loc[0, ["queue → insert", "insert → activate", "→ wake", "→ process start",
                          "process start → function"]].fillna(-1).tolist() == [50, -1, 20, 430, 40]
    assert phases.loc[1, ["queue → insert", "insert → activate", "→ wake", "→ process start",
                          "process start → function"]].fillna(-1).tolist() == [60, 2740, -1, 900, 50]
    assert phases["total"].tolist() == [540, 3750] and phases["module"].tolist() == [1000, 5000]
    summary = analysis.df_phase_summary(run)
    assert summary.loc["insert → activate", "items"] == 1
    assert summary.loc[list(analysis.phases.PHASES), "share"].sum() == pytest.approx(1.0)
    assert analysis.plot_phases(run).axes[0].get_ylabel().startswith("mean per item")


def test_phase_percentiles_are_over_the_items_that_went_through_the_phase(tmp_path):
    # Three items of four were held back by max_active (activate stamp), for 1000-3000 ns;
    # the fourth was not: it has no such phase, not a 0 ns one.
    path = write_synthetic_run(tmp_path / "run", np.array([5000] * 4), tsc_khz=1_000_000)
    write_phases(path, [(100, 150, 0, 0, 600, 640), (100, 150, 1150, 0, 1600, 1640),
                        (100, 150, 2150, 0, 2600, 2640), (100, 150, 3150, 0, 3600, 3640)])
    summary = analysis.df_phase_summary(analysis.load_run(path))
    held = summary.loc["insert → activate"]
    assert held["items"] == 3 and held["p50_ns"] == 2000 and held["mean_ns"] == 2000
    assert summary.loc["→ wake", "items"] == 0
    assert summary.loc["queue → insert", "items"] == 4
    assert summary.loc[list(analysis.phases.PHASES), "share"].sum() == pytest.approx(1.0)


def test_phase_stamps_that_go_backwards_are_refused(tmp_path):
    path = write_synthetic_run(tmp_path / "run", np.array([1000]), tsc_khz=1_000_000)
    write_phases(path, [(100, 150, 0, 140, 600, 640)])
    with pytest.raises(WqkitError, match="work item 0: the wake stamp is before the previous one"):
        analysis.df_phases(analysis.load_run(path))


def test_samples_are_parsed_in_seq_order_whatever_order_they_completed_in():
    import numpy as np

    from wqkit.experiments.samples import SAMPLE_DTYPE, SAMPLE_VALID, parse_samples

    rng = np.random.default_rng(7)
    for seqs in (rng.permutation(1000),                              # dense
                 rng.permutation(np.arange(0, 100_000, 97))[:500],   # sparse
                 np.array([5, 3, 3, 1])):                             # a repeated seq: stable
        records = np.zeros(len(seqs), dtype=SAMPLE_DTYPE)
        records["seq"], records["t0"], records["flags"] = seqs, np.arange(len(seqs)), SAMPLE_VALID
        frame = parse_samples(records.tobytes())
        assert list(frame["seq"]) == sorted(seqs)
        # Each record kept its own fields: t0 was its position in completion order.
        assert (seqs[frame["t0"].to_numpy()] == frame["seq"].to_numpy()).all()
    assert list(parse_samples(records.tobytes())["t0"]) == [3, 1, 2, 0]


def test_samples_written_row_group_by_row_group_read_back_equal(tmp_path, monkeypatch):
    import numpy as np

    from wqkit.experiments import samples

    monkeypatch.setattr(samples, "ROW_GROUP", 4)        # 10 valid records: groups of 4, 4 and 2
    rng = np.random.default_rng(3)
    records = np.zeros(12, dtype=samples.SAMPLE_DTYPE)
    records["seq"], records["t0"] = rng.permutation(12), rng.integers(0, 2**40, 12)
    records["t1"] = records["t0"] + rng.integers(0, 10**6, 12)
    records["flags"] = samples.SAMPLE_VALID
    records["flags"][[2, 7]] = 0                         # never completed: not kept
    frame = samples.parse_samples(records.tobytes(), tmp_path / "samples.parquet")
    written = pd.read_parquet(tmp_path / "samples.parquet")
    assert written.equals(frame) and list(written.columns) == samples.COLUMNS
    assert list(frame["seq"]) == sorted(np.delete(records["seq"], [2, 7]))
    assert (frame["cycles"] == frame["t1"].astype("int64") - frame["t0"].astype("int64")).all()
    assert frame.dtypes.to_dict() == samples.COLUMN_DTYPES
    empty = samples.parse_samples(b"", tmp_path / "empty.parquet")
    assert len(pd.read_parquet(tmp_path / "empty.parquet")) == len(empty) == 0
