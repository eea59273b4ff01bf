// SPDX-License-Identifier: GPL-2.0
/*
 * wq_new_worker - load that forces a worker pool to create new workers.
 *
 * A runner thread queues @nr_work_max work items, one every @delay ms, on a
 * per-CPU workqueue of the module's own, all on @cpu. Each work item sleeps
 * @hold_ms: a sleeping worker is not available to the pool, so once the idle
 * workers are used up the pool must create new ones. The module only
 * generates the load; wqkit's tracers time worker creation. It still records
 * per item the TSC at queue time and at execution start and the executing
 * worker's pid, so the number of distinct workers is known.
 *
 * Samples and counters are in /sys/kernel/debug/wqkit/new_worker/.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <asm/msr.h>

#include "wqkit_experiment.h"
#include "new_worker_params.h"

static struct wqkit_experiment xp;

static void new_worker_work_fn(struct work_struct *work)
{
	wqkit_timed_work_started(&xp.rec, work, rdtsc_ordered());
	msleep(hold_ms);
}

static int new_worker_run(void *unused)
{
	struct wqkit_timed_work *items = xp.items;
	unsigned int i;

	for (i = 0; i < nr_work_max && !kthread_should_stop(); i++) {
		struct wqkit_timed_work *item = &items[i];

		INIT_WORK(&item->work, new_worker_work_fn);
		item->seq = i;
		wqkit_timed_work_queue(item, xp.wq, cpu);
		if (delay)
			msleep(delay);
		else
			cond_resched();
	}
	flush_workqueue(xp.wq);
	wqkit_recorder_finish(&xp.rec, i == nr_work_max ? 0 : -EINTR);
	return 0;
}

static int __init new_worker_init(void)
{
	struct wqkit_experiment_desc desc = {
		.item_size = sizeof(struct wqkit_timed_work),
		.max_active = WQ_MAX_ACTIVE,
		.run = new_worker_run,
	};
	int ret;

	wqkit_declared_desc(&desc);
	ret = wqkit_check_params();
	if (ret)
		return ret;
	ret = wqkit_experiment_start(&xp, &desc);
	if (ret)
		return ret;
	wqkit_pr_params("started");
	return 0;
}

static void __exit new_worker_exit(void)
{
	wqkit_experiment_stop(&xp);
	pr_info("unloaded\n");
}

module_init(new_worker_init);
module_exit(new_worker_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: flood a worker pool so that it creates workers");
