"""The boot-level statistics keep what they state: coverage, A/A false positives, variance components,
Holm's adjustment and regimes, each against simulated data or an independent computation."""

import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from wqkit.analysis import boots
from wqkit.analysis.study import df_effects, study_effects

DRAWS = 20_000
TRUE_RATIO = 1.2
#: Per-boot statistics as studies see them: lognormal at several spreads, and two regimes like
#: the serial insert_exec runs' (p50 of 3 boots in 8 near 6.45 µs, 5 near 16 µs).
SIGMAS = (0.1, 0.3, 0.6, 1.2)
SIZES = (3, 5, 8, 16)


def _lognormal(sigma):
    return lambda rng, shape: rng.normal(0.0, sigma, shape)


def _two_regimes(rng, shape):
    high = rng.random(shape) < 5 / 8
    return np.where(high, rng.normal(np.log(16e3), 0.15, shape), rng.normal(np.log(6.45e3), 0.02, shape))


CASES = [(f"lognormal σ={s}", _lognormal(s)) for s in SIGMAS] + [("two regimes", _two_regimes)]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name, draw", CASES, ids=[c[0] for c in CASES])
def test_intervals_cover_the_true_ratio_95_percent_and_a_a_excludes_1_rarely(name, draw, n):
    """Welch's interval (independent boots) and the paired one (both levels in each boot) on
    log boot values: nominal 95 % covers a true 1.2× in 93–97 % of draws, and with no effect
    excludes 1 in at most 6 %. One case errs on the safe side past 97 %: Welch's interval at 3
    boots a level with two regimes covers 97.07 % (200,000 draws; it is a little too wide,
    never too narrow), so the upper bound is 97.5 %."""
    rng = np.random.default_rng(zlib.crc32(f"{name} {n}".encode()))
    shift = np.log(TRUE_RATIO)
    a, b = draw(rng, (DRAWS, n)), draw(rng, (DRAWS, n)) + shift
    for result in (boots.welch_interval(b, a), boots.paired_interval(b - a)):
        covered = np.mean((result.low <= shift) & (shift <= result.high))
        assert 0.93 <= covered <= 0.975, (name, n, covered)
    a, b = draw(rng, (DRAWS, n)), draw(rng, (DRAWS, n))
    for result in (boots.welch_interval(b, a), boots.paired_interval(b - a)):
        excluded = (result.low > 0) | (result.high < 0)
        assert excluded.mean() <= 0.06, (name, n, excluded.mean())
        assert ((result.p_value < 0.05) == excluded).all(), "the test and the interval disagree"


def test_the_t_intervals_are_scipy_s():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 0.3, 6), rng.normal(0.2, 0.6, 4)
    welch = boots.welch_interval(a, b)
    reference = scipy_stats.ttest_ind(a, b, equal_var=False)
    low, high = reference.confidence_interval(0.95)
    assert (welch.low, welch.high, welch.p_value) == pytest.approx((low, high, reference.pvalue))
    one = boots.mean_interval(a)
    reference = scipy_stats.ttest_1samp(a, 0.0)
    assert (one.low, one.high, one.p_value) == pytest.approx((*reference.confidence_interval(0.95), reference.pvalue))


def test_fewer_than_two_boots_give_no_interval_never_a_zero_width_one():
    one = boots.mean_interval(np.array([1.0]))
    assert one.estimate == 1.0 and np.isnan(one.low) and np.isnan(one.high)
    ratio = boots.welch_interval(np.array([1.0]), np.array([1.0, 2.0]))
    assert np.isnan(ratio.low) and np.isnan(ratio.p_value)
    table = pd.DataFrame({"flags": ["a", "b", "b"], "boot": ["x", "y", "z"], "p50": [10.0, 11.0, 12.0]})
    row = df_effects(table, "flags", run_stats=("p50",)).set_index("level")
    assert np.isnan(row.loc["a", "ci_low_ns"]) and "1 boot: no interval" in row.loc["a", "note"]
    assert np.isnan(row.loc["b", "ratio_low"]) and "baseline has 1 boot" in row.loc["b", "note"]


def test_variance_components_recover_what_was_simulated():
    """One-way ANOVA estimates over many boots come back to the variances drawn."""
    rng = np.random.default_rng(7)
    groups = [rng.normal(rng.normal(0, 0.3), 0.1, 4) for _ in range(4000)]
    between, within = boots.variance_components(groups)
    assert between == pytest.approx(0.09, rel=0.06) and within == pytest.approx(0.01, rel=0.03)
    assert np.isnan(boots.variance_components([np.array([1.0, 1.2])])[0])      # one boot: no between
    assert boots.variance_components([np.array([1.0]), np.array([2.0])]) == pytest.approx((0.5, np.nan), nan_ok=True)


def test_holm_matches_its_definition_and_skips_nan():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.2])
    adjusted = boots.holm(p)
    # by hand: sorted 0.01, 0.03, 0.04, 0.2 times 4, 3, 2, 1, made monotone
    assert adjusted[[0, 3, 2, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert np.isnan(adjusted[1])


def test_regimes_are_found_where_boots_split_and_not_in_one_spread():
    serial = np.log([6.4, 6.5, 6.45, 13.3, 15.0, 16.2, 18.0, 20.1])
    low, high = boots.regimes(serial)
    assert low.sum() == 3 and high.sum() == 5 and low[:3].all()
    rng = np.random.default_rng(3)
    assert boots.regimes(rng.normal(0, 0.3, 8)) is None
    assert boots.regimes(serial[:3]) is None


def _hierarchical_study(rng, boots_per_level: int, runs_per_boot: int, ratio: float) -> pd.DataFrame:
    """Runs of two kernels, each boot shifting its runs (σ 0.3), runs of a boot spread by σ 0.1."""
    rows = []
    for kernel, scale in (("a", 1.0), ("b", ratio)):
        for boot in range(boots_per_level):
            offset = rng.normal(0, 0.3)
            for _ in range(runs_per_boot):
                rows.append({"kernel": kernel, "boot": f"{kernel}{boot}",
                             "p50": 1e4 * scale * np.exp(offset + rng.normal(0, 0.1))})
    return pd.DataFrame(rows)


def test_df_effects_resamples_boots_not_runs():
    """Through df_effects: boots with 5 runs each, whose boot effect dwarfs the runs' spread.
    Its interval keeps 95 % (an interval over runs would cover far less)."""
    rng = np.random.default_rng(11)
    draws, covered = 400, 0
    for _ in range(draws):
        effects = df_effects(_hierarchical_study(rng, 4, 5, TRUE_RATIO), "kernel", run_stats=("p50",))
        row = effects.set_index("level").loc["b"]
        assert row["design"] == "independent" and row["boots"] == 4 and row["runs"] == 20
        covered += row["ratio_low"] <= TRUE_RATIO * 1.0000001 and TRUE_RATIO <= row["ratio_high"] * 1.0000001
    assert 0.92 <= covered / draws <= 0.98, covered / draws
    # Treating the 20 runs as independent (one boot each) is what went wrong before: far too narrow.
    table = _hierarchical_study(rng, 4, 5, TRUE_RATIO)
    wrong = df_effects(table.assign(boot=range(len(table))), "kernel", run_stats=("p50",)).set_index("level").loc["b"]
    right = df_effects(table, "kernel", run_stats=("p50",)).set_index("level").loc["b"]
    assert (wrong["ratio_high"] / wrong["ratio_low"]) < (right["ratio_high"] / right["ratio_low"])


def test_a_factor_varied_within_boots_is_compared_boot_by_boot():
    """serial shares each boot with its baseline: the boot's own level cancels (paired), and a
    1.2× effect stands out of a boot-to-boot spread of σ 0.5."""
    rng = np.random.default_rng(5)
    rows = []
    for boot in range(6):
        offset = rng.normal(0, 0.5)
        for serial, scale in ((False, 1.0), (True, 1.2)):
            rows += [{"serial": serial, "boot": boot, "p50": 1e4 * scale * np.exp(offset + rng.normal(0, 0.02))}
                     for _ in range(2)]
    table = pd.DataFrame(rows)
    table.attrs["factors"] = {"serial": [False, True]}
    row = df_effects(table, "serial", run_stats=("p50",)).set_index("level").loc[True]
    assert row["design"] == "paired" and 1.1 < row["ratio_low"] and row["ratio_high"] < 1.3
    assert row["sd_boot"] > 0.2 and row["sd_run"] < 0.05


def test_study_effects_adjust_every_comparison_together():
    rng = np.random.default_rng(2)
    rows = [{"experiment": "insert_exec", "kernel": k, "wq_flags": f, "boot": f"{k}{b}",
             "p50": 1e4 * (3.0 if (k, f) == ("b", "unbound") else 1.0) * np.exp(rng.normal(0, 0.05))}
            for k in "ab" for b in range(5) for f in ("percpu", "unbound")]
    table = pd.DataFrame(rows).assign(**{s: np.nan for s in ("p90", "p99", "makespan", "wait_p50", "wait_p90",
                                                             "wait_p99", "run_p50", "run_p90", "run_p99")})
    table.attrs["factors"] = {"kernel": ["a", "b"], "wq_flags": ["percpu", "unbound"]}
    found = {factor: effects for _, factor, effects, _ in study_effects(table)}
    assert found["kernel"].attrs["family"] == 4      # 2 factors × 2 strata × 1 non-baseline level × p50
    compared = pd.concat(found.values())
    compared = compared[compared["design"] != "baseline"]
    assert (compared["p_adjusted"] >= compared["p_value"]).all()
    assert compared["p_adjusted"].to_numpy() == pytest.approx(boots.holm(compared["p_value"].to_numpy()))
    kernel = found["kernel"].set_index(["stratum", "level"])
    assert kernel.loc[("wq_flags=unbound", "b"), "survives"]
    assert not kernel.loc[("wq_flags=percpu", "b"), "survives"]


def test_intervals_and_rank_tests_agree_with_hand_computed_values():
    """Independent of scipy: a t interval from a published t table value, and the rank tests'
    exact p-values counted from their permutations."""
    # 1..5: mean 3, sd sqrt(2.5), se sqrt(0.5); t(0.975, 4) = 2.776445 (any t table).
    one = boots.mean_interval(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    half = 2.776445 * np.sqrt(0.5)
    assert (one.estimate, one.low, one.high) == pytest.approx((3.0, 3.0 - half, 3.0 + half), abs=1e-5)
    # Equal spreads and sizes: Welch's df is 2(n-1) = 8, t(0.975, 8) = 2.306004; se = sqrt(2.5/5 * 2).
    welch = boots.welch_interval(np.array([6.0, 7.0, 8.0, 9.0, 10.0]), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    half = 2.306004 * np.sqrt(1.0)
    assert (welch.estimate, welch.low, welch.high) == pytest.approx((5.0, 5.0 - half, 5.0 + half), abs=1e-5)
    # Mann-Whitney, 3 against 3, fully separated: 1 of the C(6,3) = 20 orderings each way: p = 2/20.
    assert boots.rank_p_value(np.array([4.0, 5.0, 6.0]), np.array([1.0, 2.0, 3.0]), paired=False) == \
        pytest.approx(0.1)
    # Wilcoxon signed-rank, 5 positive differences: 1 of 2^5 sign patterns each way: p = 2/32.
    assert boots.rank_p_value(np.array([2.0, 3.0, 4.5, 5.0, 7.0]), np.array([1.0, 1.0, 1.0, 1.0, 1.0]),
                              paired=True) == pytest.approx(0.0625)
