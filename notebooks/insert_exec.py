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
nr = None               # work items to queue (None, here and below: the declared default)
wq_flags = None         # None: percpu (the declared default), or a list of unbound,highpri,cpu_intensive
flags = None            # the older spelling of wq_flags (papermill -p flags unbound still works)
cpu = None              # CPU to queue on (None: any; 0 is CPU 0)
max_active = None       # workqueue max_active (None: the kernel's default)
affinity_scope = None   # an unbound workqueue's scope: cpu, smt, cache, cache_shard (7.1+), numa, system
affinity_strict = None  # True: keep its workers inside the queuing CPU's pod
gap_us = None           # µs between two inserts (None or 0: burst)
serial = None           # True: wait for each item before queueing the next
target = "lab"          # "lab" or "local"
kernel = None           # lab kernel, as --kernel takes it: None (Debian's 6.12), "7.3", "patched", "patched-7.3"...
topology = None         # the lab machine's shape, e.g. "sockets=2,cores=4,threads=2,numa=2" (None: 2 flat CPUs)
data_dir = ""           # analyse an existing run (or directory of runs) instead of measuring
out = "runs"            # where a new run directory goes

# %% [markdown]
# # queue_work_on() → execution latency
#
# How long a work item waits between `queue_work_on()` and the first
# instruction of its work function, in TSC cycles converted to ns with the
# run's `tsc_khz`, minus the calibrated cost of the timestamp pair.

# %%
from wqkit.notebook import measure_or_load, show_report

run = measure_or_load("insert_exec", data_dir, target=target, kernel=kernel, topology=topology, out=out,
                      nr=nr, wq_flags=wq_flags, flags=flags, cpu=cpu, max_active=max_active,
                      affinity_scope=affinity_scope, affinity_strict=affinity_strict, gap_us=gap_us, serial=serial)
print(run.name)
print(run.provenance)

# %%
show_report(run)
