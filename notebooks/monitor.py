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
target = "lab"          # "lab" (drgn in the lab guest) or "local" (this kernel, root)
kernel = None           # lab kernel, as --kernel takes it: None (Debian's 6.12), "7.3", "patched", "patched-7.3"...
core = ""               # a vmcore to read instead (with vmlinux); one snapshot
vmlinux = ""            # the kernel's debug vmlinux (core or local)
snapshots = 5           # static snapshots for the report
interval = 2.0          # seconds between them
workqueues = ""         # names to show, space-separated; empty for all
scenario = "NORMAL"     # NORMAL, TOTAL_WORKERS_PER_CPU, TOTAL_WORKERS_FROM_WQ_PER_CPU, TOTAL_WORK_ITEMS_PER_CPU, ALL_POOLWORKQUEUES

# %% [markdown]
# # Workqueues, worker pools and kworkers
#
# Snapshots of the kernel's workqueue state taken with drgn: every workqueue
# with its flags, type, max_active and started/completed counters, every
# worker pool, every kworker. The static part below is what a report shows;
# the dashboard at the end refreshes live when run in JupyterLab.

# %%
from wqkit.inspect import dashboard
from wqkit.inspect.sources import snapshot_source
from wqkit.notebook import lab_options

take = snapshot_source(target=target, core=core, vmlinux=vmlinux, **lab_options(kernel))
history = dashboard.collect(take, 1 if core else snapshots, interval)
last = history[-1]
names = workqueues.split()
print(f"{len(history)} snapshots of {last.kernel_release}: {len(last.workqueues)} workqueues, "
      f"{len(last.pools)} pools, {len(last.workers)} workers")

# %% [markdown]
# ## The seed's view of the last snapshot

# %%
from wqkit.inspect.monitor import select_workqueues
from wqkit.inspect.text import scenario_lines

print("\n".join(scenario_lines(last, scenario, select_workqueues(last, names),
                               previous=history[-2] if len(history) > 1 else None)))

# %% [markdown]
# ## Workqueues

# %%
last.df_workqueues()

# %% [markdown]
# ## Worker pools and workers

# %%
last.df_pools()

# %%
last.df_workers()

# %% [markdown]
# ## Over time

# %%
dashboard.plot_workers_per_cpu(history);

# %%
dashboard.plot_rates(history, names);

# %%
dashboard.df_rates(history, names).groupby("workqueue").mean().sort_values("started_per_s", ascending=False).head(15)

# %% [markdown]
# ## Live dashboard (press Start; JupyterLab only)

# %%
live = dashboard.Dashboard(take)
live.widget
