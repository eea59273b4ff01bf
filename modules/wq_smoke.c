// SPDX-License-Identifier: GPL-2.0
/*
 * wq_smoke - the lab's smoke test module.
 *
 * At load time, queue @nr work items on a workqueue of its own, wait for all
 * of them and report in the kernel log how many ran. It proves that a module
 * builds against the lab kernel, that a parameter reaches it and is validated
 * there, and that workqueues run; it leaves nothing behind.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "wqkit_compat.h"
#include "wq_smoke_params.h"

static atomic_t executed = ATOMIC_INIT(0);

static void wq_smoke_work_fn(struct work_struct *work)
{
	atomic_inc(&executed);
}

static int __init wq_smoke_init(void)
{
	struct workqueue_struct *wq;
	struct work_struct *works;
	unsigned int i;
	int ret;

	ret = wqkit_check_params();
	if (ret)
		return ret;

	works = kvcalloc(nr, sizeof(*works), GFP_KERNEL);
	if (!works)
		return -ENOMEM;

	wq = alloc_workqueue("wq_smoke", WQKIT_PERCPU_FLAG, 0);
	if (!wq) {
		kvfree(works);
		return -ENOMEM;
	}

	for (i = 0; i < nr; i++) {
		INIT_WORK(&works[i], wq_smoke_work_fn);
		queue_work(wq, &works[i]);
	}
	/* destroy_workqueue() drains: every queued item has run after it. */
	destroy_workqueue(wq);
	kvfree(works);

	pr_info("nr=%u executed=%d\n", nr, atomic_read(&executed));
	return 0;
}

static void __exit wq_smoke_exit(void)
{
	pr_info("unloaded\n");
}

module_init(wq_smoke_init);
module_exit(wq_smoke_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit lab smoke test: queue nr work items and count them");
