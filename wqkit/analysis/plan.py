"""How many boots, and runs per boot, a study needs: read off a pilot study.

Kalibera & Jones ("Rigorous benchmarking in reasonable time", ISMM 2013):
with a boot costing ``c_boot`` seconds and a run ``c_run``, and the variance
of a run's log split into ``σ²_boot`` (between boots) and ``σ²_run``
(between runs of one boot), a level's mean over ``B`` boots of ``r`` runs
has variance ``(σ²_boot + σ²_run / r) / B``; for a given precision, lab time
is least at ``r* = sqrt(c_boot σ²_run / (c_run σ²_boot))`` runs per boot.
The boots then follow from the interval wanted: the smallest ``B`` whose
t half-width on the log ratio of two levels is at most ``log(1 + half_width)``.
A comparison made within boots (paired) has no boot term: what is left of
its pilot's per-boot difference variance beyond the runs' own
(``σ²_d − 2σ²_run/r``, the levels' interaction with the boot) takes
``2σ²_boot``'s place.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from wqkit.analysis.boots import CONFIDENCE
from wqkit.analysis.study import study_effects

#: The most runs per boot and boots a level a plan proposes (beyond, the lab time is the answer).
MAX_RUNS_PER_BOOT = 20
MAX_BOOTS = 1000
#: A boot's and a run's seconds when the pilot did not record them (TCG, this project's machines).
BOOT_S, RUN_S = 15.0, 10.0


def _median_seconds(runs: pd.DataFrame, column: str, default: float) -> float:
    """The pilot's median of a time column, or ``default`` where it recorded none."""
    known = runs[column].dropna() if column in runs else pd.Series(dtype=float)
    return float(known.median()) if len(known) else default


def boots_needed(var_boot: float, var_run: float, runs_per_boot: int, half_width: float,
                 paired: bool = False) -> int:
    """The fewest boots a level (≥ 2) that give a ratio interval of at most ±half_width
    (relative) between two levels of these variance components (t with 2B − 2 degrees of
    freedom, B − 1 when paired); MAX_BOOTS if none does."""
    variance = var_boot + (var_run / runs_per_boot if np.isfinite(var_run) else 0.0)
    target = math.log1p(half_width)
    for n in range(2, MAX_BOOTS + 1):
        df = n - 1 if paired else 2 * n - 2
        if scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df) * math.sqrt(2 * variance / n) <= target:
            return n
    return MAX_BOOTS


def optimal_runs_per_boot(var_boot: float, var_run: float, boot_s: float, run_s: float) -> int:
    """Kalibera & Jones' cost-optimal runs per boot (1 when the pilot cannot tell)."""
    if not (np.isfinite(var_run) and var_run > 0):
        return 1
    if not var_boot > 0:
        return MAX_RUNS_PER_BOOT
    return int(min(MAX_RUNS_PER_BOOT, max(1, round(math.sqrt(boot_s * var_run / (run_s * var_boot))))))


def df_plan(pilot: pd.DataFrame, half_width: float = 0.05, stats: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per comparison of a pilot df_study table (of ``stats``, default all): its variance
    components (the two levels' mean; for a paired comparison ``sd_boot`` is its level ×
    boot interaction), the cost-optimal runs per boot, the boots a level needs for
    ±half_width, and the lab time of that plan for the comparison's two levels (seconds).
    Comparisons whose levels have fewer than two boots in the pilot cannot be planned: their
    count is ``attrs["unplannable"]``."""
    boot_s = _median_seconds(pilot, "boot_seconds", BOOT_S)
    rows = []
    unplannable = 0
    for experiment, factor, effects, runs in study_effects(pilot):
        if stats:
            effects = effects[effects["stat"].isin(stats)]
        run_s = _median_seconds(runs, "duration_s", RUN_S)
        baseline = effects.attrs["baseline"]
        for _, row in effects[effects["design"] != "baseline"].iterrows():
            base = effects[(effects["stratum"] == row["stratum"]) & (effects["stat"] == row["stat"])
                           & (effects["design"] == "baseline")]
            if not (np.isfinite(row["sd_boot"]) and np.isfinite(base["sd_boot"]).all() and len(base)):
                unplannable += 1
                continue
            var_boot = float(np.mean([row["sd_boot"] ** 2, *(base["sd_boot"] ** 2)]))
            var_run = float(np.nanmean([row["sd_run"] ** 2, *(base["sd_run"] ** 2)])) \
                if np.isfinite([row["sd_run"], *base["sd_run"]]).any() else np.nan
            paired = row["design"] == "paired"
            if paired:
                var_boot = _paired_boot_term(row, var_run)
            r = optimal_runs_per_boot(var_boot, var_run, boot_s, run_s)
            b = boots_needed(var_boot, var_run, r, half_width, paired)
            rows.append({"experiment": experiment, "factor": factor, "stratum": row["stratum"], "stat": row["stat"],
                         "level": row["level"], "baseline": baseline, "design": row["design"],
                         "sd_boot": math.sqrt(var_boot),
                         "sd_run": math.sqrt(var_run) if np.isfinite(var_run) else np.nan,
                         "runs_per_boot": r, "boots": b,
                         "lab_s": b * (boot_s + 2 * r * run_s) if paired else 2 * b * (boot_s + r * run_s),
                         "pilot_ratio": row["ratio"], "pilot_low": row["ratio_low"], "pilot_high": row["ratio_high"]})
    frame = pd.DataFrame(rows)
    frame.attrs.update(boot_s=boot_s, half_width=half_width, unplannable=unplannable)
    return frame


def _paired_boot_term(row: pd.Series, var_run: float) -> float:
    """Half the pilot's per-boot variance of a paired difference beyond its runs' own: the
    term a paired comparison has where an independent one has σ²_boot."""
    boots = int(row["boots"])
    se = (math.log(row["ratio_high"]) - math.log(row["ratio_low"])) / (2 * scipy_stats.t.ppf(0.5 + CONFIDENCE / 2,
                                                                                              boots - 1))
    runs_term = 2 * var_run / (row["runs"] / boots) if np.isfinite(var_run) else 0.0
    return max(0.0, se**2 * boots - runs_term) / 2


def study_plan(pilot: pd.DataFrame, points_per_lab: dict[str, int], half_width: float = 0.05,
               comparisons: pd.DataFrame | None = None) -> dict:
    """One replication for the whole study: the runs per boot (1..MAX_RUNS_PER_BOOT) whose
    boots (the most any comparison needs) cost the least lab time for a study whose boot
    groups hold ``points_per_lab`` points each; with that lab time (seconds)."""
    plan = df_plan(pilot, half_width) if comparisons is None else comparisons
    boot_s = plan.attrs.get("boot_s", BOOT_S)
    run_s = _median_seconds(pilot, "duration_s", RUN_S)
    best = None
    for r in range(1, MAX_RUNS_PER_BOOT + 1):
        b = max((boots_needed(row.sd_boot ** 2, row.sd_run ** 2, r, half_width, row.design == "paired")
                 for row in plan.itertuples()), default=2)
        lab_s = b * sum(boot_s + r * n * run_s for n in points_per_lab.values())
        if best is None or lab_s < best["lab_s"]:
            best = {"runs_per_boot": r, "boots": b, "lab_s": lab_s}
    return best or {"runs_per_boot": 1, "boots": 2, "lab_s": float("nan")}
