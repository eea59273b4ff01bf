// SPDX-License-Identifier: GPL-2.0
/*
 * wq_fixture - workqueues of known shape, for checking what wqkit reports.
 *
 * At load time it allocates three workqueues:
 *   wqkit_fx_percpu   per-CPU, max_active = @max_active
 *   wqkit_fx_unbound  WQ_UNBOUND | WQ_HIGHPRI, max_active = @max_active
 *   wqkit_fx_ordered  an ordered workqueue
 * Writing N to /sys/module/wq_fixture/parameters/run queues N work items on
 * each of them and waits until they have all run, so that each workqueue's
 * started and completed counters move by exactly N.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "wqkit_compat.h"
#include "wqkit_run_param.h"
#include "fixture_params.h"

#define NR_FIXTURES	3

static struct workqueue_struct *fixtures[NR_FIXTURES];

static void fixture_work_fn(struct work_struct *work)
{
}

static int fixture_run(unsigned int n)
{
	struct work_struct *works;
	unsigned int i, w;

	works = kvcalloc(n, sizeof(*works), GFP_KERNEL);
	if (!works)
		return -ENOMEM;
	for (w = 0; w < NR_FIXTURES; w++) {
		for (i = 0; i < n; i++) {
			INIT_WORK(&works[i], fixture_work_fn);
			queue_work(fixtures[w], &works[i]);
		}
		flush_workqueue(fixtures[w]);
	}
	kvfree(works);
	pr_info("ran %u work items on each workqueue\n", n);
	return 0;
}

static struct wqkit_run_param fixture_run_param = {
	.max = WQKIT_RUN_MAX,
	.run = fixture_run,
	.lock = __MUTEX_INITIALIZER(fixture_run_param.lock),
};
module_param_cb(run, &wqkit_run_param_ops, &fixture_run_param, 0644);

static void fixture_destroy(void)
{
	int w;

	for (w = 0; w < NR_FIXTURES; w++) {
		if (fixtures[w])
			destroy_workqueue(fixtures[w]);
		fixtures[w] = NULL;
	}
}

static int __init fixture_init(void)
{
	int ret = wqkit_check_params();

	if (ret)
		return ret;
	fixtures[0] = alloc_workqueue("wqkit_fx_percpu", WQKIT_PERCPU_FLAG, max_active);
	fixtures[1] = alloc_workqueue("wqkit_fx_unbound", WQ_UNBOUND | WQ_HIGHPRI, max_active);
	fixtures[2] = alloc_ordered_workqueue("wqkit_fx_ordered", 0);
	if (!fixtures[0] || !fixtures[1] || !fixtures[2]) {
		fixture_destroy();
		return -ENOMEM;
	}
	pr_info("created 3 workqueues, max_active=%d\n", max_active);
	return 0;
}

static void __exit fixture_exit(void)
{
	fixture_destroy();
}

module_init(fixture_init);
module_exit(fixture_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: workqueues of known flags and max_active, and a known number of work items");
