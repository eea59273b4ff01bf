"""``wqkit analyze``: the seed's analyze_wq_cycles.py, as files and a printed table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from wqkit.analysis.load import Run, load_runs
from wqkit.analysis.plots import write_plots
from wqkit.analysis.stats import df_outliers, df_per_cpu, df_summary

TABLE_COLUMNS = ["experiment", "accel", "count", "min_ns", "p50_ns", "p90_ns", "p99_ns", "p99.9_ns",
                 "max_ns", "cv", "migration_rate"]


def analyze(data_dir: Path, out: Path) -> tuple[list[Run], pd.DataFrame, list[Path]]:
    """Analyse every run under ``data_dir`` and write summary.csv/json, per-run CSVs and PNGs to ``out``."""
    runs = load_runs(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = df_summary(runs)
    summary.to_csv(out / "summary.csv")
    (out / "summary.json").write_text(json.dumps(
        {name: {**row, "provenance": run.provenance} for (name, row), run in
         zip(summary.to_dict(orient="index").items(), runs)}, indent=2, default=float) + "\n")
    files = [out / "summary.csv", out / "summary.json"]
    for run in runs:
        df_per_cpu(run).to_csv(out / f"{run.name}-per-cpu.csv")
        df_outliers(run).to_csv(out / f"{run.name}-outliers.csv", index=False)
        files += [out / f"{run.name}-per-cpu.csv", out / f"{run.name}-outliers.csv"]
    files += write_plots(runs, out)
    return runs, summary, files


def format_table(summary: pd.DataFrame) -> str:
    """The summary as a fixed-width text table (ns columns in µs for reading)."""
    table = summary[TABLE_COLUMNS].copy()
    for column in [c for c in TABLE_COLUMNS if c.endswith("_ns")]:
        table[column.replace("_ns", "_us")] = table.pop(column) / 1000
    return table.to_string(float_format=lambda v: f"{v:,.3f}")
