// SPDX-License-Identifier: GPL-2.0
/*
 * wq_buggy - bugs on demand, for testing the debug lab kernel's checks.
 *
 * At load time, @bug chooses one: 1 leaks an allocation (kmemleak), 2 reads
 * freed memory (KASAN), 3 frees a work item that is still queued (debug
 * objects), 4 allocates with GFP_KERNEL (which may sleep) under a spinlock. 0 does nothing wrong.
 * Never load it outside a throwaway VM.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "wq_buggy_params.h"

static DEFINE_SPINLOCK(buggy_lock);
static void *leaked;
static int sink;

struct buggy_work {
	struct work_struct work;
	int payload[8];
};

static void buggy_work_fn(struct work_struct *work)
{
	msleep(200);
}

static void buggy_free_active(void)
{
	struct buggy_work *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return;
	INIT_WORK(&w->work, buggy_work_fn);
	schedule_work(&w->work);
	schedule_work(&w->work);	/* queued again while pending: still active */
	kfree(w);			/* ODEBUG: free active object (it cancels the work) */
}

static int __init buggy_init(void)
{
	int ret = wqkit_check_params();
	int *freed;

	if (ret)
		return ret;
	switch (bug) {
	case 1:
		leaked = kmalloc(128, GFP_KERNEL);
		leaked = NULL;		/* the only reference is gone */
		break;
	case 2:
		freed = kmalloc_array(8, sizeof(*freed), GFP_KERNEL);
		kfree(freed);
		WRITE_ONCE(sink, READ_ONCE(freed[3]));	/* KASAN: slab-use-after-free */
		break;
	case 3:
		buggy_free_active();
		break;
	case 4:
		spin_lock(&buggy_lock);
		/* BUG: sleeping function called from invalid context (might_sleep) */
		kfree(kmalloc(64, GFP_KERNEL));
		spin_unlock(&buggy_lock);
		break;
	}
	pr_info("loaded with bug=%u\n", bug);
	return 0;
}

static void __exit buggy_exit(void)
{
	pr_info("unloaded\n");
}

module_init(buggy_init);
module_exit(buggy_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit test module: bugs on demand for the debug kernel's checks");
