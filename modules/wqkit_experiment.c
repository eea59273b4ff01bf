// SPDX-License-Identifier: GPL-2.0
/*
 * wqkit_experiment - see wqkit_experiment.h. Linked into every experiment module.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/vmalloc.h>
#include <asm/msr.h>

#include "wqkit_compat.h"
#include "wqkit_experiment.h"

/**
 * wqkit_check_cpu - accept -1 (any CPU) or an online CPU
 */
int wqkit_check_cpu(int cpu)
{
	if (cpu == -1 || (cpu >= 0 && cpu < nr_cpu_ids && cpu_online(cpu)))
		return 0;
	pr_err("cpu=%d is not an online CPU (-1 for any, 0..%u)\n", cpu, nr_cpu_ids - 1);
	return -EINVAL;
}

/**
 * wqkit_alloc_workqueue - a workqueue named @name with WQKIT_WQ_* @wqkit_flags
 * (already checked) and @max_active (0 for the default); NULL if out of memory
 */
struct workqueue_struct *wqkit_alloc_workqueue(const char *name, unsigned int wqkit_flags,
					       int max_active)
{
	unsigned int flags = 0;

	if (wqkit_flags & WQKIT_WQ_UNBOUND)
		flags |= WQ_UNBOUND;
	else
		flags |= WQKIT_PERCPU_FLAG;
	if (wqkit_flags & WQKIT_WQ_HIGHPRI)
		flags |= WQ_HIGHPRI;
	if (wqkit_flags & WQKIT_WQ_CPU_INTENSIVE)
		flags |= WQ_CPU_INTENSIVE;
	return alloc_workqueue("%s", flags, max_active, name);
}

/**
 * wqkit_timed_work_queue - timestamp and queue @tw on @cpu (-1: any, WORK_CPU_UNBOUND)
 *
 * Preemption is off between the timestamp and queue_work_on() so that
 * cpu_queue is the CPU that really queued the item.
 */
void wqkit_timed_work_queue(struct wqkit_timed_work *tw, struct workqueue_struct *wq, int cpu)
{
	preempt_disable();
	tw->cpu_queue = smp_processor_id();
	tw->t0 = rdtsc_ordered();
	queue_work_on(cpu >= 0 ? cpu : WORK_CPU_UNBOUND, wq, &tw->work);
	preempt_enable();
}

/**
 * wqkit_timed_work_started - record the sample of a timed work item
 * @rec: the experiment's recorder
 * @work: the work item, embedded in a struct wqkit_timed_work
 * @t1: rdtsc_ordered() taken by the caller at the first instruction of its
 *	work function
 */
void wqkit_timed_work_started(struct wqkit_recorder *rec, struct work_struct *work, u64 t1)
{
	struct wqkit_timed_work *tw = container_of(work, struct wqkit_timed_work, work);
	struct wqkit_sample sample = {
		.t0 = tw->t0,
		.t1 = t1,
		.seq = tw->seq,
		.pid = current->pid,
		.cpu_queue = tw->cpu_queue,
		.cpu_exec = raw_smp_processor_id(),
	};

	wqkit_recorder_put(rec, &sample);
}

/* The recorder's stop: the runner first (it queues), then what it queued. */
static void wqkit_experiment_stop_producers(struct wqkit_recorder *rec)
{
	struct wqkit_experiment *xp = container_of(rec, struct wqkit_experiment, rec);

	if (!xp->runner)	/* written to "stop" while still starting */
		return;
	WRITE_ONCE(xp->stopping, true);
	kthread_stop(xp->runner);
	drain_workqueue(xp->wq);
	xp->runner_stopped = true;
}

/**
 * wqkit_experiment_start - set an experiment up and start its runner thread
 *
 * On failure everything allocated so far is released. The runner holds a
 * task reference so that wqkit_experiment_stop() is safe whether it has
 * already returned or is still running.
 */
int wqkit_experiment_start(struct wqkit_experiment *xp, const struct wqkit_experiment_desc *desc)
{
	struct task_struct *runner;
	int ret;

	xp->runner = NULL;
	xp->runner_stopped = false;
	xp->stopping = false;
	xp->wq = NULL;
	ret = wqkit_recorder_init(&xp->rec, desc->name, desc->nr, wqkit_experiment_stop_producers);
	if (ret)
		return ret;
	ret = -ENOMEM;
	xp->items = vzalloc(array_size(desc->nr, desc->item_size));
	if (!xp->items)
		goto err_recorder;
	xp->wq = wqkit_alloc_workqueue(desc->name, desc->wq_flags, desc->max_active);
	if (!xp->wq)
		goto err_items;
	runner = kthread_create(desc->run, xp, "wqkit_%s", desc->name);
	if (IS_ERR(runner)) {
		ret = PTR_ERR(runner);
		goto err_wq;
	}
	if (desc->cpu >= 0)
		kthread_bind(runner, desc->cpu);
	xp->runner = get_task_struct(runner);
	wake_up_process(runner);
	return 0;

err_wq:
	destroy_workqueue(xp->wq);
	xp->wq = NULL;
err_items:
	vfree(xp->items);
err_recorder:
	wqkit_recorder_destroy(&xp->rec);
	return ret;
}

/**
 * wqkit_experiment_stop - stop the runner (early if still running), drain the
 * workqueue and free everything
 */
void wqkit_experiment_stop(struct wqkit_experiment *xp)
{
	wqkit_recorder_stop(&xp->rec);
	if (!xp->runner_stopped)
		wqkit_experiment_stop_producers(&xp->rec);
	put_task_struct(xp->runner);
	destroy_workqueue(xp->wq);
	vfree(xp->items);
	wqkit_recorder_destroy(&xp->rec);
}
