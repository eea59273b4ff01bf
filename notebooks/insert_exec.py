# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
nr = 1000               # work items to queue
flags = "percpu"        # percpu, or a list of unbound,highpri,cpu_intensive
cpu = None              # CPU to queue on (None: any; 0 is CPU 0)
max_active = None       # workqueue max_active (None: the kernel's default)
gap_us = None           # µs between two inserts (None or 0: burst)
serial = None           # True: wait for each item before queueing the next
target = "lab"          # "lab" or "local"
data_dir = ""           # analyse an existing run (or directory of runs) instead of measuring
out = "runs"            # where a new run directory goes

# %% [markdown]
# # queue_work_on() → execution latency
#
# How long a work item waits between `queue_work_on()` and the first
# instruction of its work function, in TSC cycles converted to ns with the
# run's `tsc_khz`, minus the calibrated cost of the timestamp pair.

# %%
from wqkit import analysis
from wqkit.notebook import measure_or_load

run = measure_or_load("insert_exec", data_dir, target=target, out=out,
                      nr=nr, wq_flags=flags, cpu=cpu, max_active=max_active, gap_us=gap_us, serial=serial)
print(run.name)
print(run.provenance)

# %% [markdown]
# ## Provenance and parameters

# %%
analysis.df_provenance(run)

# %% [markdown]
# ## Summary

# %%
analysis.df_summary_table([run]).T

# %% [markdown]
# ## Distribution

# %%
analysis.plot_histogram([run]);

# %%
analysis.plot_cdf([run]);

# %%
analysis.plot_ccdf([run]);

# %% [markdown]
# ## In run order: warm-up, drift, periodic spikes

# %%
analysis.plot_timeseries(run);

# %% [markdown]
# ## Inside the workqueue code
#
# On the patched lab kernel (`--kernel patched`, `linux_patch_exp/`), the
# kernel timestamps each of this run's work items along its own code: the
# wait splits into phases.

# %%
if analysis.load_phases(run) is not None:
    display(analysis.readable(analysis.df_phase_summary(run)))
    analysis.plot_phases(run);
else:
    print(f"{run.meta.get('kernel_release')} has no measurement points: run on --kernel patched to see the phases.")

# %% [markdown]
# ## Per CPU (queuing → executing)

# %%
analysis.readable(analysis.df_per_cpu(run))

# %%
analysis.plot_per_cpu(run);

# %% [markdown]
# ## Outliers (above median + 10·MAD)

# %%
outliers = analysis.df_outliers(run)
print(f"{len(outliers)} outliers above {analysis.format_duration(outliers.attrs['threshold_ns'])}")
analysis.readable(outliers.head(20))
