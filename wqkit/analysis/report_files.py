"""``wqkit analyze``: the seed's analyze_wq_cycles.py, as files and a printed table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from wqkit.analysis.load import Run, RunList, load_runs
from wqkit.errors import WqkitError
from wqkit.analysis.plots import write_plots
from wqkit.analysis.stats import df_outliers, df_per_cpu, df_summary, df_summary_table

#: The columns of the printed table (headers of df_summary_table, unit added).
PRINTED = ("status", "experiment", "accel", "count", "min", "p50", "p90", "p99", "p99.9", "max", "CV",
           "migrated", "≤ 0 ns")


def analyze(data_dir: Path, out: Path, include_failed: bool = False) -> tuple[RunList, pd.DataFrame, list[Path]]:
    """Analyse every run under ``data_dir`` and write summary.csv/json, per-run CSVs and PNGs to ``out``.

    Failed runs are left out unless ``include_failed``; unreadable runs are
    skipped; both are listed in the returned runs' ``notes``.
    """
    runs = load_runs(data_dir, include_failed=include_failed)
    if not runs:
        raise WqkitError(f"{data_dir}: no run to analyse ({'; '.join(runs.notes) or 'none found'})")
    out.mkdir(parents=True, exist_ok=True)
    summary = df_summary(runs)
    summary.to_csv(out / "summary.csv")
    (out / "summary.json").write_text(json.dumps(
        {name: {**row, "provenance": run.provenance} for (name, row), run in
         zip(summary.to_dict(orient="index").items(), runs)}, indent=2, default=float) + "\n")
    files = [out / "summary.csv", out / "summary.json"]
    for run in (r for r in runs if len(r.samples)):
        df_per_cpu(run).to_csv(out / f"{run.name}-per-cpu.csv")
        df_outliers(run).to_csv(out / f"{run.name}-outliers.csv", index=False)
        files += [out / f"{run.name}-per-cpu.csv", out / f"{run.name}-outliers.csv"]
    files += write_plots(runs, out)
    return runs, summary, files


def format_table(runs: list[Run]) -> str:
    """The summary as a fixed-width text table, durations in one unit that fits."""
    table = df_summary_table(runs)
    return table[[c for c in table.columns if c.split(" (")[0] in PRINTED]].to_string()
