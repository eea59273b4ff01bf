"""The analysis on synthetic samples of known distribution."""

import math
import re

import numpy as np
import pytest

from wqkit import analysis
from wqkit.analysis.synthetic import write_synthetic_run
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
