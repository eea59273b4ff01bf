// SPDX-License-Identifier: GPL-2.0
/*
 * wqkit_experiment - see wqkit_experiment.h. Linked into every experiment module.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/string.h>
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
 * (already checked) and @max_active (0 for the default), in sysfs if @sysfs
 * (WQ_SYSFS: where an unbound workqueue's attributes are set); NULL if out of memory
 */
struct workqueue_struct *wqkit_alloc_workqueue(const char *name, unsigned int wqkit_flags,
					       int max_active, bool sysfs)
{
	unsigned int flags = sysfs ? WQ_SYSFS : 0;

	if (wqkit_flags & WQKIT_WQ_UNBOUND)
		flags |= WQ_UNBOUND;
	else
		flags |= WQKIT_PERCPU_FLAG;
	if (wqkit_flags & WQKIT_WQ_HIGHPRI)
		flags |= WQ_HIGHPRI;
	if (wqkit_flags & WQKIT_WQ_BH)
		flags |= WQKIT_BH_FLAG;
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

/*
 * Open the sysfs attribute @attr of workqueue @name for @flags. Its attributes
 * are set as a user would set them: apply_workqueue_attrs() is not exported to
 * modules, and the kernel's own lib/test_workqueue.c changes a scope this way.
 */
static struct file *wqkit_open_wq_attr(const char *name, const char *attr, int flags)
{
	struct file *file;
	char *path;

	path = kasprintf(GFP_KERNEL, "/sys/bus/workqueue/devices/%s/%s", name, attr);
	if (!path)
		return ERR_PTR(-ENOMEM);
	file = filp_open(path, flags, 0);
	if (IS_ERR(file))
		pr_err("cannot open %s (%ld)\n", path, PTR_ERR(file));
	kfree(path);
	return file;
}

/*
 * Write @value into attribute @attr of workqueue @name, then read it back: the
 * kernel must report @value itself. A kernel refuses a value it does not know
 * (-EINVAL), but one that matches names by prefix (6.12 takes "cache_shard"
 * as "cache") reports another value: that is refused here too.
 */
static int wqkit_write_wq_attr(const char *name, const char *attr, const char *value)
{
	char reported[32] = "";
	struct file *file;
	loff_t pos = 0;
	ssize_t ret;

	file = wqkit_open_wq_attr(name, attr, O_WRONLY);
	if (IS_ERR(file))
		return PTR_ERR(file);
	ret = kernel_write(file, value, strlen(value), &pos);
	filp_close(file, NULL);
	if (ret < 0) {
		pr_err("the kernel refuses %s=%s (%zd)\n", attr, value, ret);
		return ret;
	}
	file = wqkit_open_wq_attr(name, attr, O_RDONLY);
	if (IS_ERR(file))
		return PTR_ERR(file);
	pos = 0;
	ret = kernel_read(file, reported, sizeof(reported) - 1, &pos);
	filp_close(file, NULL);
	if (ret < 0)
		return ret;
	reported[strcspn(reported, " \n")] = '\0';
	if (strcmp(reported, value)) {
		pr_err("the kernel took %s=%s as %s: it does not know %s\n", attr, value, reported, value);
		return -EINVAL;
	}
	return 0;
}

/* Whether @desc sets an unbound workqueue's attributes (scope, strict). */
static bool wqkit_desc_sets_attrs(const struct wqkit_experiment_desc *desc)
{
	return (desc->affinity_scope && strcmp(desc->affinity_scope, "default")) || desc->affinity_strict;
}

static int wqkit_apply_attrs(const struct wqkit_experiment_desc *desc)
{
	int ret = 0;

	if (desc->affinity_scope && strcmp(desc->affinity_scope, "default"))
		ret = wqkit_write_wq_attr(desc->name, "affinity_scope", desc->affinity_scope);
	if (!ret && desc->affinity_strict)
		ret = wqkit_write_wq_attr(desc->name, "affinity_strict", "1");
	return ret;
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

	if ((desc->wq_flags & WQKIT_WQ_BH) && !WQKIT_BH_FLAG) {
		pr_err("wq_flags=bh: this kernel has no BH workqueues (Linux 6.9)\n");
		return -EINVAL;
	}
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
	xp->wq = wqkit_alloc_workqueue(desc->name, desc->wq_flags, desc->max_active,
				       wqkit_desc_sets_attrs(desc));
	if (!xp->wq)
		goto err_items;
	if (wqkit_desc_sets_attrs(desc)) {
		ret = wqkit_apply_attrs(desc);
		if (ret)
			goto err_wq;
	}
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
