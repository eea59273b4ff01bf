/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wqkit_experiment - the skeleton every experiment module shares: the
 * check of a CPU parameter, the mapping of wqkit's workqueue flag bits
 * (wqkit_flags.h, generated) to the kernel's, and the life cycle of
 * an experiment: a sample recorder, an array of per-item state, a workqueue
 * and a runner thread that drives the experiment after module_init returns.
 */
#ifndef _WQKIT_EXPERIMENT_H
#define _WQKIT_EXPERIMENT_H

#include <linux/types.h>
#include <linux/workqueue.h>

#include "wqkit_flags.h"
#include "wqkit_samples.h"

int wqkit_check_cpu(int cpu);
struct workqueue_struct *wqkit_alloc_workqueue(const char *name, unsigned int wqkit_flags,
					       int max_active, bool sysfs);

/* A work item timed from queue_work_on() to the first instruction of its function. */
struct wqkit_timed_work {
	struct work_struct work;
	u64 t0;			/* TSC just before queue_work_on() */
	u32 seq;
	u16 cpu_queue;
};

void wqkit_timed_work_queue(struct wqkit_timed_work *tw, struct workqueue_struct *wq, int cpu);
void wqkit_timed_work_started(struct wqkit_recorder *rec, struct work_struct *work, u64 t1);

struct wqkit_experiment {
	struct wqkit_recorder rec;
	struct workqueue_struct *wq;
	struct task_struct *runner;
	bool runner_stopped;
	bool stopping;		/* set before the runner is stopped: see wqkit_experiment_stopping() */
	void *items;		/* nr * item_size bytes, zeroed */
};

/**
 * struct wqkit_experiment_desc - what an experiment needs set up
 * @name: debugfs directory, workqueue and runner thread name
 * @nr: number of samples (and items)
 * @item_size: size of one item's state
 * @wq_flags: WQKIT_WQ_* bits (already checked)
 * @max_active: workqueue max_active (0 for the default)
 * @affinity_scope: an unbound workqueue's affinity scope, NULL or "default" for the kernel's
 * @affinity_strict: keep an unbound workqueue's workers in their pod
 * @cpu: CPU the runner is bound to, -1 for none
 * @run: the runner; it must call wqkit_recorder_finish() and then return
 */
struct wqkit_experiment_desc {
	const char *name;
	u32 nr;
	size_t item_size;
	unsigned int wq_flags;
	int max_active;
	const char *affinity_scope;
	bool affinity_strict;
	int cpu;
	int (*run)(void *xp);
};

int wqkit_experiment_start(struct wqkit_experiment *xp, const struct wqkit_experiment_desc *desc);
void wqkit_experiment_stop(struct wqkit_experiment *xp);

/**
 * wqkit_experiment_stopping - whether the experiment is being stopped
 *
 * Work that queues more work (a task graph's successors) checks it and
 * queues nothing more, so that draining the workqueue ends at once instead
 * of running the rest of the experiment.
 */
static inline bool wqkit_experiment_stopping(const struct wqkit_experiment *xp)
{
	return READ_ONCE(xp->stopping);
}

#endif /* _WQKIT_EXPERIMENT_H */
