"""Analysis of run directories, LISA-style: ``df_*`` return DataFrames, ``plot_*`` figures.

    from wqkit import analysis
    runs = analysis.load_runs("data/")        # failed runs left out, see runs.notes
    analysis.df_summary_table(runs)           # for reading; df_summary for the raw ns
    analysis.plot_cdf(runs)
"""

from wqkit.analysis.kserver import df_configs, df_makespan, df_tasks, load_graph, plot_gantt, plot_waits
from wqkit.analysis.load import Run, RunList, df_provenance, find_runs, load_run, load_runs
from wqkit.analysis.placement import (df_placement, df_placements, df_study_placement, plot_placement,
                                     plot_study_placement, readable_placement)
from wqkit.analysis.upstream import df_scope_benchmark, plot_scope_benchmark, readable_benchmark
from wqkit.analysis.phases import df_phase_summary, df_phases, load_phases, plot_phases
from wqkit.analysis.state import df_state, load_state, plot_state
from wqkit.analysis.plots import (plot_ccdf, plot_cdf, plot_histogram, plot_per_cpu, plot_timeseries,
                                  write_plots)
from wqkit.analysis.stats import (df_compare, df_outliers, df_per_cpu, df_summary, df_summary_table, median_ci,
                                  migration_rate, readable)
from wqkit.analysis.units import format_duration

__all__ = [
    "Run", "RunList", "df_provenance", "find_runs", "load_run", "load_runs",
    "df_summary", "df_summary_table", "df_per_cpu", "df_outliers", "df_compare", "median_ci",
    "migration_rate", "readable", "format_duration",
    "df_tasks", "df_makespan", "df_configs", "load_graph", "plot_gantt", "plot_waits",
    "df_placement", "df_placements", "df_study_placement", "plot_placement", "plot_study_placement",
    "readable_placement",
    "df_scope_benchmark", "plot_scope_benchmark", "readable_benchmark",
    "df_phases", "df_phase_summary", "load_phases", "plot_phases", "df_state", "load_state", "plot_state",
    "plot_histogram", "plot_cdf", "plot_ccdf", "plot_timeseries", "plot_per_cpu", "write_plots",
]
