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
nr = None               # executions to time (None, here and below: the declared default)
wq_flags = None         # None: percpu (the declared default), or a list of unbound,highpri,cpu_intensive
flags = None            # the older spelling of wq_flags (papermill -p flags unbound still works)
cpu = None              # CPU to queue on (None: any; 0 is CPU 0)
loops = None            # busy-loop iterations per execution (0: none)
mem_kb = None           # KiB of memory written per execution (None: the module's default)
target = "lab"          # "lab" or "local"
kernel = None           # lab kernel, as --kernel takes it: None (Debian's 6.12), "7.3", "patched", "patched-7.3"...
data_dir = ""           # analyse an existing run (or directory of runs) instead of measuring
out = "runs"            # where a new run directory goes

# %% [markdown]
# # Execution-time stability of one work function
#
# The same work function runs `nr` times, one execution at a time; each
# sample is its duration from first to last instruction, in TSC cycles
# converted to ns with the run's `tsc_khz`. A low coefficient of variation means a predictable execution time.

# %%
from wqkit.notebook import measure_or_load, show_report

run = measure_or_load("exec_time_pred", data_dir, target=target, kernel=kernel, out=out,
                      nr=nr, wq_flags=wq_flags, flags=flags, cpu=cpu, loops=loops, mem_kb=mem_kb)
print(run.name)
print(run.provenance)

# %%
show_report(run)
