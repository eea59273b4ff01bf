# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
shape = "fork-join"     # chain, fork-join, pipeline or layered
size = "width=8,depth=2"  # the shape's sizes (see wqkit.experiments.graph)
cost = "busy:20000"     # every task's cost: busy:ITERATIONS, sleep:MICROSECONDS or mem:KIB
repetitions = 10        # times the graph runs
wq_flags = None         # None: percpu (the declared default), or a list of unbound,highpri,cpu_intensive
flags = None            # the older spelling of wq_flags (papermill -p flags unbound still works)
max_active = None       # workqueue max_active (None: the kernel's default)
cpus = None             # CPUs the tasks are queued on, round-robin (e.g. "0,1"; "": any)
sweep = False           # also compare percpu/unbound x max_active default/1 on the same graph
target = "lab"          # "lab" or "local"
kernel = None           # lab kernel, as --kernel takes it: None (Debian's 6.12), "7.3", "patched", "patched-7.3"...
data_dir = ""           # analyse an existing run (or directory of runs) instead of measuring
out = "runs"            # where new run directories go

# %% [markdown]
# # A task graph on a workqueue (kserver)
#
# Every task is a work item; a task is queued when its last predecessor
# finishes. How well does this workqueue configuration execute the graph?
# The makespan of each repetition is compared with a lower bound no
# schedule beats on the CPUs used: max(critical path, CPU work / CPUs),
# both computed from the tasks' own measured run times (a sleeping task
# counts on the path, not as CPU work).

# %%
from wqkit import analysis
from wqkit.notebook import measure_or_load, show_report, sweep_kserver, task_graph

graph = task_graph(shape, size, cost)
run = measure_or_load("kserver", data_dir, target=target, kernel=kernel, out=out, graph=graph, repeat=repetitions,
                      wq_flags=wq_flags, flags=flags, max_active=max_active, cpus=cpus or None)
print(run.name)
print(run.provenance)
print(f"{run.meta['graph']['tasks']} tasks, {run.meta['graph']['edges']} edges")

# %%
show_report(run)

# %% [markdown]
# ## Workqueue configurations on the same graph

# %%
if sweep and not data_dir:
    display(analysis.readable(analysis.df_configs(sweep_kserver(graph, repeat=repetitions, out=out, kernel=kernel))))
else:
    print("Set sweep = True to compare percpu/unbound and max_active default/1 on this graph.")
