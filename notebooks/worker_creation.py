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
delay = None            # ms between two flooding work items (the seed's --delay; None: the declared default)
nr_work_max = None      # flooding work items (the seed's --nr-work-max; None: the declared default)
engine = "both"         # bpftrace, bcc, or both at once on the same flood (this report compares the two)
trigger = None          # death runs only; here for a uniform set of parameters
target = "lab"          # lab (default) or local (needs root, kprobes and BCC/bpftrace)
kernel = None           # lab kernel, as --kernel takes it: None (Debian's 6.12), "7.3", "patched", "patched-7.3"...
data_dir = ""           # analyse an existing traced run instead of tracing
out = "runs"            # where a new run directory goes

# %% [markdown]
# # How long the kernel takes to give a pool a new kworker
#
# The `new_worker` module floods CPU 0's pool with sleeping work items, one
# every `delay` ms. Each sleeping item leaves the pool without a running
# worker, so the pool creates another: the tracer times every
# `create_worker()` call (entry → return, a kprobe and a kretprobe), notes
# the new worker's pid and pool, and when it runs its first item. With
# `engine="both"`, bpftrace and BCC trace the same flood: their counts must
# agree exactly, their durations worker by worker within their own probe
# overhead.

# %%
from wqkit.analysis import readable, workers
from wqkit.notebook import trace_or_load

trace = trace_or_load("creation", data_dir, target=target, kernel=kernel, out=out, engine=engine, delay=delay,
                      nr_work_max=nr_work_max)
meta, events = trace.meta, trace.events
print(f"{meta['kernel_release']} under {meta['accel'].upper()} ({meta.get('timing_note', 'hardware timings')}); "
      f"probes: {', '.join(meta['probes'])}; load: {meta['load']}")

# %% [markdown]
# ## Durations, per engine

# %%
readable(workers.df_worker_summary(meta, events))

# %%
workers.plot_worker_durations(meta, events);

# %% [markdown]
# ## The pool growing
#
# Each new worker when its `create_worker()` call began (dashed) and when it
# ran its first item (solid), from the flood's first queued item on; the
# last workers may stay idle. A worker the kernel made before the flood (for
# another reason) is left out.

# %%
workers.plot_worker_arrivals(meta, events);

# %% [markdown]
# ## The two engines, worker by worker (when both traced)

# %%
readable(workers.df_engine_agreement(meta, events)).reset_index()
