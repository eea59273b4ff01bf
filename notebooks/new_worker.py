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
nr_work_max = None      # work items to insert (None, here and below: the declared default,
delay = None            # ms between two insertions                 see wqkit run new_worker --help)
hold_ms = None          # ms each work item sleeps
cpu = None              # CPU whose pool receives the flood
sample_hz = 50          # state samples per second, read from the host over QMP (up to 100)
target = "lab"          # the timeline needs the lab
kernel = None           # lab kernel, as --kernel takes it: None (Debian's 6.12), "7.3", "patched", "patched-7.3"...
data_dir = ""           # analyse an existing run (or directory of runs) instead of measuring
out = "runs"            # where a new run directory goes

# %% [markdown]
# # A worker pool under a flood of sleeping work items
#
# `new_worker` inserts `nr_work_max` items, one every `delay` ms, on a
# per-CPU workqueue; each sleeps `hold_ms`. Sleeping items leave the pool
# without a running worker, so the pool wakes or creates another: the pool
# grows, then its idle workers wait for the kernel's idle timeout. The
# host samples the pools and workqueues over QMP while it happens; nothing
# runs in the guest for it.

# %%
from wqkit.notebook import measure_or_load, show_report

run = measure_or_load("new_worker", data_dir, target=target, kernel=kernel, out=out, sample_state_hz=sample_hz,
                      nr_work_max=nr_work_max, delay=delay, hold_ms=hold_ms, cpu=cpu)
print(run.name)
print(run.provenance)

# %%
show_report(run)
