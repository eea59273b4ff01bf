// SPDX-License-Identifier: GPL-2.0
/*
 * wq_stall - a wedged worker, on purpose, for diagnosing stalls from outside.
 *
 * At load time it queues, on CPU 0 of a per-CPU workqueue of its own with
 * max_active 1 (wqkit_stall), one work item that blocks for @hold_s seconds
 * (or until the module is unloaded), then @pending quick work items that
 * pile up behind it on the inactive list. Writing to its flush parameter
 * waits for all of them: whoever writes it is stuck as long as the worker
 * is, which is what a monitor inside the guest would be.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "wqkit_compat.h"
#include "stall_params.h"

static struct workqueue_struct *stall_wq;
static DECLARE_COMPLETION(stall_release);
static struct work_struct stall_blocker;
static struct work_struct *stall_waiting;

static void stall_block_fn(struct work_struct *work)
{
	wait_for_completion_timeout(&stall_release, hold_s * HZ);
}

static void stall_quick_fn(struct work_struct *work)
{
}

static int stall_flush_set(const char *val, const struct kernel_param *kp)
{
	flush_workqueue(stall_wq);
	return 0;
}

static const struct kernel_param_ops stall_flush_ops = {
	.set = stall_flush_set,
};
module_param_cb(flush, &stall_flush_ops, NULL, 0200);

static int __init stall_init(void)
{
	unsigned int i;
	int ret;

	ret = wqkit_check_params();
	if (ret)
		return ret;
	if (!cpu_online(0)) {
		pr_err("CPU 0 is offline\n");
		return -EINVAL;
	}
	stall_waiting = kcalloc(pending, sizeof(*stall_waiting), GFP_KERNEL);
	stall_wq = alloc_workqueue("wqkit_stall", WQKIT_PERCPU_FLAG, 1);
	if (!stall_waiting || !stall_wq) {
		kfree(stall_waiting);
		if (stall_wq)
			destroy_workqueue(stall_wq);
		return -ENOMEM;
	}
	INIT_WORK(&stall_blocker, stall_block_fn);
	queue_work_on(0, stall_wq, &stall_blocker);
	for (i = 0; i < pending; i++) {
		INIT_WORK(&stall_waiting[i], stall_quick_fn);
		queue_work_on(0, stall_wq, &stall_waiting[i]);
	}
	pr_info("blocking CPU 0's worker for %u s with %u work items behind it\n", hold_s, pending);
	return 0;
}

static void __exit stall_exit(void)
{
	complete_all(&stall_release);
	destroy_workqueue(stall_wq);
	kfree(stall_waiting);
	pr_info("unloaded\n");
}

module_init(stall_init);
module_exit(stall_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: a worker blocked on purpose, with work piling up behind it");
