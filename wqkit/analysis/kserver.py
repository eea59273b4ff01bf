"""Task-graph runs (kserver): per-task timelines, makespan against its lower bound, waits, Gantt charts.

A kserver run records two samples per task and repetition (see
modules/kserver.c): (ready, start) and (start, end), ``ready`` being when the
task's last predecessor finished. Its graph is kept beside the samples
(``graph.txt``). Times are converted with the run's ``tsc_khz``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wqkit.analysis.load import Run
from wqkit.analysis.units import unit_for
from wqkit.errors import WqkitError
from wqkit.experiments.graph import TaskGraph


def load_graph(run: Run) -> TaskGraph:
    """The task graph that ran (``graph.txt``)."""
    path = run.path / "graph.txt"
    if not path.is_file():
        raise WqkitError(f"{run.name}: no graph.txt (not a kserver run)")
    return TaskGraph.from_text(path.read_text())


def df_tasks(run: Run) -> pd.DataFrame:
    """One row per (repetition, task): ready, start, end (TSC), wait and run time (ns), the CPU
    that made it ready, the CPU and worker (pid) that ran it."""
    graph = load_graph(run)
    ids = sorted(graph.tasks)          # the module numbers tasks in the order of graph.txt
    samples = run.samples.sort_values("seq")
    waits, runs = samples[samples["seq"] % 2 == 0], samples[samples["seq"] % 2 == 1]
    if len(waits) != len(runs) or not (waits["seq"].to_numpy() + 1 == runs["seq"].to_numpy()).all():
        raise WqkitError(f"{run.name}: the (ready, start) and (start, end) samples do not pair up")
    k = waits["seq"].to_numpy() // 2
    scale = 1e6 / run.tsc_khz
    frame = pd.DataFrame({
        "rep": k // len(ids), "task": np.asarray(ids)[k % len(ids)],
        "ready": waits["t0"].to_numpy(), "start": waits["t1"].to_numpy(), "end": runs["t1"].to_numpy(),
        "cpu_ready": waits["cpu_queue"].to_numpy(), "cpu": runs["cpu_exec"].to_numpy(), "pid": runs["pid"].to_numpy(),
    })
    frame["wait_ns"] = (frame["start"].astype(np.int64) - frame["ready"].astype(np.int64)) * scale
    frame["run_ns"] = (frame["end"].astype(np.int64) - frame["start"].astype(np.int64)) * scale
    return frame.set_index(["rep", "task"]).sort_index()


def cpus_used(run: Run) -> int:
    """How many CPUs the tasks could run on: the --task-cpus list, else the target's CPUs."""
    listed = [c for c in str(run.meta.get("parameters", {}).get("cpus", "")).split(",") if c.strip()]
    return len(listed) or int(run.meta.get("cpus", 1))


def df_makespan(run: Run) -> pd.DataFrame:
    """Per repetition: the makespan (first ready to last end), the critical path, the CPU work,
    the makespan lower bound max(critical path, CPU work / P) on the P CPUs used, and the
    efficiency bound / makespan (1 is a perfect schedule).

    A task's duration is its shortest run time over all repetitions: a wall-clock run
    time also counts the time its CPU gave to other tasks (unbound workers time-slice
    one CPU), which would make "total work / P" exceed what any schedule needs. The
    critical path counts whole durations; the work counts only what occupies a CPU
    (:meth:`~wqkit.experiments.graph.TaskGraph.cpu_work`: a sleep task's duration is a delay, not
    work, and counting it made the bound exceed the achievable makespan).
    """
    graph, tasks, cpus = load_graph(run), df_tasks(run), cpus_used(run)
    scale = 1e6 / run.tsc_khz
    duration = tasks["run_ns"].groupby(level="task").min().to_dict()
    work = graph.cpu_work(duration)
    critical, _ = graph.critical_path(duration)
    bound = graph.makespan_lower_bound(duration, cpus, work)
    rows = []
    for rep, one in tasks.groupby(level="rep"):
        makespan = (int(one["end"].max()) - int(one["ready"].min())) * scale
        rows.append({"rep": rep, "makespan_ns": makespan, "critical_path_ns": critical,
                     "cpu_work_ns": sum(work.values()), "lower_bound_ns": bound,
                     "efficiency": bound / makespan if makespan else float("nan")})
    return pd.DataFrame(rows).set_index("rep")


def makespan_ns(run: Run) -> float:
    """A task graph run's makespan: the median over its repetitions (the one statistic wqkit
    calls a run's makespan, in tables and studies alike)."""
    return float(df_makespan(run)["makespan_ns"].median())


def df_configs(runs: list[Run]) -> pd.DataFrame:
    """Workqueue configurations compared on their graph: median makespan, efficiency, wait."""
    rows = []
    for run in runs:
        spans, tasks, params = df_makespan(run), df_tasks(run), run.meta.get("parameters", {})
        rows.append({"run": run.name, "wq_flags": params.get("wq_flags"), "max_active": params.get("max_active"),
                     "cpus": params.get("cpus") or f"any of {run.meta.get('cpus')}",
                     "tasks": run.meta.get("graph", {}).get("tasks"), "p50_makespan_ns": makespan_ns(run),
                     "p50_efficiency": spans["efficiency"].median(), "p50_wait_ns": tasks["wait_ns"].median(),
                     "p99_wait_ns": tasks["wait_ns"].quantile(0.99)})
    return pd.DataFrame(rows).set_index("run")


def plot_gantt(run: Run, rep: int = 0) -> Figure:
    """One repetition as a Gantt chart: a row per worker (pid, with its CPU), a bar per task."""
    tasks = df_tasks(run).xs(rep, level="rep").reset_index()
    origin = int(tasks["ready"].min())
    unit, scale = unit_for([float((tasks["end"].astype(np.int64) - origin).max() * 1e6 / run.tsc_khz)])
    to_unit = 1e6 / run.tsc_khz / scale
    workers = sorted(tasks["pid"].unique())
    colours = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(workers) + 1.8))
    for row, pid in enumerate(workers):
        mine = tasks[tasks["pid"] == pid]
        starts = (mine["start"].astype(np.int64) - origin) * to_unit
        widths = (mine["end"].astype(np.int64) - mine["start"].astype(np.int64)) * to_unit
        ax.broken_barh(list(zip(starts, widths)), (row - 0.4, 0.8),
                       facecolors=[colours(int(t) % 20) for t in mine["task"]])
    ax.set_yticks(range(len(workers)),
                  [f"pid {pid} (CPU {','.join(map(str, sorted(tasks[tasks['pid'] == pid]['cpu'].unique())))})"
                   for pid in workers], fontsize=7)
    ax.set_xlabel(f"{unit} since the first task was ready (colour: task)")
    fig.suptitle(f"Repetition {rep} of {run.label}\n{run.origin}", fontsize=8)
    fig.subplots_adjust(left=0.2, right=0.98, top=0.8, bottom=0.2)
    return fig


def plot_waits(run: Run) -> Figure:
    """Distribution of each task's wait from ready (last predecessor done) to start."""
    waits = df_tasks(run)["wait_ns"].to_numpy()
    unit, scale = unit_for([float(np.median(waits))])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(waits / scale, bins=60)
    ax.set_xlabel(f"ready → start ({unit})")
    ax.set_ylabel("tasks")
    fig.suptitle(f"Task waits: {run.label}\n{run.origin}", fontsize=8)
    return fig
