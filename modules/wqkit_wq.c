// SPDX-License-Identifier: GPL-2.0
/*
 * wqkit_wq - see wqkit_wq.h. Linked into every experiment module.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/printk.h>
#include <linux/sched/task.h>

#include "wqkit_wq.h"

/**
 * wqkit_check_range - -EINVAL and a pr_err naming @name unless min <= value <= max
 */
int wqkit_check_range(const char *name, long value, long min, long max)
{
	if (value >= min && value <= max)
		return 0;
	pr_err("%s=%ld is out of range (%ld..%ld)\n", name, value, min, max);
	return -EINVAL;
}

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
 * wqkit_wq_flags - translate wqkit's wq_flags bits into the kernel's WQ_* flags
 */
int wqkit_wq_flags(unsigned int wqkit_flags, unsigned int *wq_flags)
{
	if (wqkit_flags & ~WQKIT_WQ_ALL) {
		pr_err("wq_flags=0x%x has unknown bits (allowed mask 0x%x)\n",
		       wqkit_flags, WQKIT_WQ_ALL);
		return -EINVAL;
	}
	*wq_flags = 0;
	if (wqkit_flags & WQKIT_WQ_UNBOUND)
		*wq_flags |= WQ_UNBOUND;
	if (wqkit_flags & WQKIT_WQ_HIGHPRI)
		*wq_flags |= WQ_HIGHPRI;
	if (wqkit_flags & WQKIT_WQ_CPU_INTENSIVE)
		*wq_flags |= WQ_CPU_INTENSIVE;
	return 0;
}

/**
 * wqkit_alloc_wq - allocate the experiment's workqueue (flags already checked)
 */
struct workqueue_struct *wqkit_alloc_wq(const char *name, unsigned int wqkit_flags,
					int max_active)
{
	unsigned int flags;

	if (wqkit_wq_flags(wqkit_flags, &flags))
		return NULL;
	return alloc_workqueue("%s", flags, max_active, name);
}

/**
 * wqkit_start_runner - run @fn in a kernel thread, bound to @cpu unless -1
 *
 * The thread holds a task reference so that wqkit_stop_runner() is safe
 * whether @fn has already returned or is still running.
 */
struct task_struct *wqkit_start_runner(int (*fn)(void *data), void *data,
				       int cpu, const char *name)
{
	struct task_struct *task;

	task = kthread_create(fn, data, "%s", name);
	if (IS_ERR(task))
		return task;
	if (cpu >= 0)
		kthread_bind(task, cpu);
	get_task_struct(task);
	wake_up_process(task);
	return task;
}

/**
 * wqkit_stop_runner - ask the runner to stop, wait for it and drop the reference
 */
void wqkit_stop_runner(struct task_struct *runner)
{
	kthread_stop(runner);
	put_task_struct(runner);
}
