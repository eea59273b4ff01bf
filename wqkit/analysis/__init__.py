"""Analysis of run directories, LISA-style: ``df_*`` return DataFrames, ``plot_*`` figures.

    from wqkit import analysis
    run = analysis.load_run("runs/insert_exec-20261126-034312")
    analysis.df_summary([run])
    analysis.plot_cdf([run])
"""

from wqkit.analysis.load import Run, RunList, df_provenance, find_runs, load_run, load_runs
from wqkit.analysis.plots import (plot_ccdf, plot_cdf, plot_histogram, plot_per_cpu, plot_timeseries,
                                  write_plots)
from wqkit.analysis.stats import (df_compare, df_outliers, df_per_cpu, df_summary, df_summary_table, median_ci,
                                  migration_rate)

__all__ = [
    "Run", "RunList", "df_provenance", "find_runs", "load_run", "load_runs",
    "df_summary", "df_summary_table", "df_per_cpu", "df_outliers", "df_compare", "median_ci", "migration_rate",
    "plot_histogram", "plot_cdf", "plot_ccdf", "plot_timeseries", "plot_per_cpu", "write_plots",
]
