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

#define NR_WORK_MAX_MAX	100000
#define DELAY_MAX	10000
#define HOLD_MS_MAX	60000

static unsigned int delay = 100;
module_param(delay, uint, 0444);
MODULE_PARM_DESC(delay, "milliseconds between two insertions (0..10000, default 100)");
static unsigned int nr_work_max = 500;
module_param(nr_work_max, uint, 0444);
MODULE_PARM_DESC(nr_work_max, "work items to insert (1..100000, default 500)");
static unsigned int hold_ms = 1000;
module_param(hold_ms, uint, 0444);
MODULE_PARM_DESC(hold_ms, "milliseconds each work item sleeps (1..60000, default 1000)");
static int cpu;
module_param(cpu, int, 0444);
MODULE_PARM_DESC(cpu, "CPU whose pool receives the load (default 0)");

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
	const struct wqkit_experiment_desc desc = {
		.name = "new_worker",
		.nr = nr_work_max,
		.item_size = sizeof(struct wqkit_timed_work),
		.max_active = WQ_MAX_ACTIVE,
		.cpu = cpu,
		.run = new_worker_run,
	};
	int ret;

	ret = wqkit_check_range("nr_work_max", nr_work_max, 1, NR_WORK_MAX_MAX) ?:
	      wqkit_check_range("delay", delay, 0, DELAY_MAX) ?:
	      wqkit_check_range("hold_ms", hold_ms, 1, HOLD_MS_MAX) ?:
	      wqkit_check_range("cpu", cpu, 0, nr_cpu_ids - 1) ?:
	      wqkit_check_cpu(cpu);
	if (ret)
		return ret;
	ret = wqkit_experiment_start(&xp, &desc);
	if (ret)
		return ret;
	pr_info("started: nr_work_max=%u delay=%u hold_ms=%u cpu=%d\n",
		nr_work_max, delay, hold_ms, cpu);
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
