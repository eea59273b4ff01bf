// SPDX-License-Identifier: GPL-2.0
/*
 * wq_worker_death - make kworkers die on demand, without waiting minutes.
 *
 * Idle kworkers die after IDLE_WORKER_TIMEOUT (5 minutes) of idleness, or
 * when their worker pool is destroyed. This module owns an unbound
 * workqueue exposed in sysfs (/sys/devices/virtual/workqueue/wqkit_death):
 * give it attributes no other workqueue has (e.g. write a nice value to its
 * nice file) and it gets a worker pool of its own. Writing N to the run
 * parameter queues N work items that each sleep @hold_ms at once, so the
 * pool creates up to N workers. Unloading the module destroys the
 * workqueue, then its pool and every worker of the pool.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "wqkit_run_param.h"
#include "worker_death_params.h"

static struct workqueue_struct *death_wq;

static void death_work_fn(struct work_struct *work)
{
	msleep(hold_ms);
}

static int death_run(unsigned int n)
{
	struct work_struct *works;
	unsigned int i;

	works = kcalloc(n, sizeof(*works), GFP_KERNEL);
	if (!works)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		INIT_WORK(&works[i], death_work_fn);
		queue_work(death_wq, &works[i]);
	}
	flush_workqueue(death_wq);
	kfree(works);
	pr_info("ran %u sleeping work items\n", n);
	return 0;
}

static struct wqkit_run_param death_run_param = {
	.max = WQKIT_RUN_MAX,
	.run = death_run,
	.lock = __MUTEX_INITIALIZER(death_run_param.lock),
};
module_param_cb(run, &wqkit_run_param_ops, &death_run_param, 0644);

static int __init death_init(void)
{
	int ret = wqkit_check_params();

	if (ret)
		return ret;
	death_wq = alloc_workqueue("wqkit_death", WQ_UNBOUND | WQ_SYSFS, WQKIT_RUN_MAX);
	if (!death_wq)
		return -ENOMEM;
	pr_info("loaded: /sys/devices/virtual/workqueue/wqkit_death\n");
	return 0;
}

static void __exit death_exit(void)
{
	destroy_workqueue(death_wq);
	pr_info("unloaded: workqueue destroyed\n");
}

module_init(death_init);
module_exit(death_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: kworkers that die when asked, by destroying their pool");
