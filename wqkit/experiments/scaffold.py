"""``wqkit new-experiment``: a working experiment of your own, outside the repository.

It writes ``DIR/NAME/``: ``NAME.c`` (a module that times ``nr`` work items from
``queue_work_on()`` to their start with wqkit's recorder), ``NAME.toml`` (its
declaration: parameters, what a sample measures) and ``NAME.ipynb`` (a report).
With ``WQKIT_EXPERIMENTS=DIR``, ``wqkit run NAME`` builds and runs it as it is;
change the work function, the parameters in the TOML, and run again.
"""

from __future__ import annotations

import json
from pathlib import Path

from wqkit.errors import WqkitError
from wqkit.runs.spec import check_name, experiments

C_SOURCE = """\
// SPDX-License-Identifier: GPL-2.0
/*
 * wq_{name} - an experiment of your own, made by wqkit new-experiment.
 *
 * A runner thread queues @nr work items on a workqueue of the module's own,
 * one every @gap_us microseconds, on @cpu (-1: any). Each sample is one
 * item's time from queue_work_on() to the first instruction of its work
 * function, in TSC cycles. Change {name}_work_fn() to measure your own work,
 * and {name}.toml to change the parameters: their definitions and range
 * checks are generated from it ({name}_params.h).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <asm/msr.h>

#include "wqkit_experiment.h"
#include "{name}_params.h"

static struct wqkit_experiment xp;

static void {name}_work_fn(struct work_struct *work)
{{
	wqkit_timed_work_started(&xp.rec, work, rdtsc_ordered());
}}

static int {name}_run(void *unused)
{{
	struct wqkit_timed_work *items = xp.items;
	unsigned int i;

	for (i = 0; i < nr && !kthread_should_stop(); i++) {{
		INIT_WORK(&items[i].work, {name}_work_fn);
		items[i].seq = i;
		wqkit_timed_work_queue(&items[i], xp.wq, cpu);
		if (gap_us)
			usleep_range(gap_us, gap_us + 1);
		else
			cond_resched();
	}}
	flush_workqueue(xp.wq);
	wqkit_recorder_finish(&xp.rec, i == nr ? 0 : -EINTR);
	return 0;
}}

static int __init {name}_init(void)
{{
	struct wqkit_experiment_desc desc = {{
		.item_size = sizeof(struct wqkit_timed_work),
		.run = {name}_run,
	}};
	int ret;

	wqkit_declared_desc(&desc);	/* name, nr and cpu, as {name}.toml declares them */
	ret = wqkit_check_params();
	if (ret)
		return ret;
	return wqkit_experiment_start(&xp, &desc);
}}

static void __exit {name}_exit(void)
{{
	wqkit_experiment_stop(&xp);
}}

module_init({name}_init);
module_exit({name}_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit experiment {name}");
"""

SPEC = """\
# The declaration of experiment {name}: wqkit reads it for `wqkit run {name}`'s options,
# its checks and its analysis, and generates {name}_params.h (the module's parameters) from it.
module = "wq_{name}"
source = "{name}.c"
description = "{name}: queue_work_on() to work start of nr work items"
links = ["recorder"]

[experiment]
measures = "queue_work_on() → work start"
count_param = "nr"
queue_to_execution = true
# Its analysis: the report sections its notebook shows (wqkit.notebook.REPORT_SECTIONS).
report = ["provenance", "summary", "distribution", "run_order", "per_cpu", "outliers"]

[[param]]
name = "nr"
type = "uint"
default = 1000
min = 1
max = 1_000_000
unit = "items"
help = "work items to queue"

[[param]]
name = "gap_us"
type = "uint"
default = 0
min = 0
max = 100_000
unit = "µs"
help = "time between two inserts, 0 for a burst"

[[param]]
shared = "cpu"          # wqkit's CPU parameter (any = -1; checked against the target's CPUs)
help = "CPU to queue on"
"""


def _notebook(name: str) -> dict:
    def cell(kind: str, text: str, tags: list[str] | None = None) -> dict:
        body = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": text}
        return body | ({"execution_count": None, "outputs": []} if kind == "code" else {})

    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                        "name": "python3"}},
            "cells": [cell("code", 'nr = None        # work items (None: the declared default)\n'
                                   'cpu = None       # CPU to queue on (None: any)\n'
                                   'target = "lab"   # "lab" or "local"\n'
                                   'data_dir = ""    # analyse an existing run instead of measuring\n'
                                   'out = "runs"     # where a new run directory goes', ["parameters"]),
                      cell("markdown", f"# {name}"),
                      cell("code", "from wqkit.notebook import measure_or_load, show_report\n\n"
                                   f'run = measure_or_load("{name}", data_dir, target=target, out=out, nr=nr, '
                                   "cpu=cpu)\nprint(run.provenance)"),
                      cell("code", "show_report(run)")]}


def new_experiment(name: str, directory: Path) -> Path:
    """Write experiment ``name``'s skeleton into ``directory/name``; return that directory."""
    check_name(name)
    if name in experiments():
        raise WqkitError(f"an experiment called {name} exists already")
    home = directory / name
    if home.exists():
        raise WqkitError(f"{home} exists already")
    home.mkdir(parents=True)
    (home / f"{name}.c").write_text(C_SOURCE.format(name=name))
    (home / f"{name}.toml").write_text(SPEC.format(name=name))
    (home / f"{name}.ipynb").write_text(json.dumps(_notebook(name), indent=1) + "\n")
    return home
