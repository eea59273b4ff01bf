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
delay = None            # creation runs only; here for a uniform set of parameters
nr_work_max = None      # creation runs only
workers_to_kill = None  # destroy: workers to create on the pool before destroying it (None: the declared default)
engine = "both"         # bpftrace, bcc, or both at once on the same load (this report compares the two)
trigger = None          # destroy (None, the declared default): the pool goes away; idle: the kernel culls idle workers (5 min)
target = "lab"          # lab (default) or local (needs root, kprobes and BCC/bpftrace)
kernel = None           # lab kernel, as --kernel takes it: None (Debian's 6.12), "7.3", "patched", "patched-7.3"...
data_dir = ""           # analyse an existing traced run instead of tracing
out = "runs"            # where a new run directory goes

# %% [markdown]
# # How long a kworker takes to die once it is told to
#
# From the moment a worker is told to die (`set_worker_dying()` on a stock
# kernel, the `workqueue_worker_dying_start` tracepoint on wqkit's patched
# one) to the exit of its task (`sched_process_exit`, or
# `workqueue_worker_dying_end`). With `trigger="destroy"` the
# `wq_worker_death` module gives its unbound workqueue a pool of its own,
# grows it to `workers_to_kill` workers and destroys it; `trigger="idle"` waits
# for the kernel's own culling of workers idle for 5 minutes. The tracer
# must report exactly the workers that went away.

# %%
from wqkit.analysis import readable, workers
from wqkit.notebook import trace_or_load

trace = trace_or_load("die", data_dir, target=target, kernel=kernel, out=out, engine=engine, trigger=trigger,
                      workers=workers_to_kill)
meta, events = trace.meta, trace.events
print(f"{meta['kernel_release']} under {meta['accel'].upper()} ({meta.get('timing_note', 'hardware timings')}); "
      f"probes: {', '.join(meta['probes'])}; load: {meta['load']}")
print(f"workers gone (seen by the guest): {meta['truth'].get('kworkers_gone')}")

# %% [markdown]
# ## Durations, per engine

# %%
readable(workers.df_worker_summary(meta, events))

# %%
workers.plot_worker_durations(meta, events);

# %% [markdown]
# ## Each worker that died

# %%
readable(workers.df_engine_agreement(meta, events)).reset_index()
