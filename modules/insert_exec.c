// SPDX-License-Identifier: GPL-2.0
/*
 * wq_insert_exec - how long a work item waits between queue_work_on() and
 * the first instruction of its work function.
 *
 * A runner thread queues @nr work items on a workqueue of the module's own
 * (flags, max_active and target CPU from the parameters), either in a burst,
 * one every @gap_us microseconds, or one at a time (@serial: wait for each
 * before queueing the next). Per item it records the TSC just before
 * queue_work_on() and at the start of the work function, with both CPUs.
 * @calibrate=1 instead records @nr back-to-back timestamp pairs: the cost of
 * the measurement itself, which the analysis subtracts.
 *
 * Samples and counters are in /sys/kernel/debug/wqkit/insert_exec/. On a
 * kernel built with CONFIG_WQ_MEASURE (wqkit's linux_patch_exp/), the
 * module also marks its work items for the kernel's own timestamps along
 * the workqueue code, exported as the binary array "phases": one struct
 * wq_measure_stamps per work item, by seq, complete once the run is done.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/vmalloc.h>
#include <asm/msr.h>
#ifdef CONFIG_WQ_MEASURE
#include <linux/wq_measure.h>
#endif

#include "wqkit_experiment.h"
#include "insert_exec_params.h"

static struct wqkit_experiment xp;

#ifdef CONFIG_WQ_MEASURE
static struct wq_measure_region region;
static struct debugfs_blob_wrapper phases;

/* The stamps, allocated before the runner starts: it marks the items. */
static int insert_exec_phases_alloc(void)
{
	if (calibrate)
		return 0;
	region.stamps = vzalloc(array_size(nr, sizeof(*region.stamps)));
	return region.stamps ? 0 : -ENOMEM;
}

/* Publish the stamps next to the samples. */
static void insert_exec_phases_publish(void)
{
	if (!region.stamps)
		return;
	phases.data = region.stamps;
	phases.size = array_size(nr, sizeof(*region.stamps));
	debugfs_create_blob("phases", 0400, xp.rec.dir, &phases);
}

static int insert_exec_phases_mark(struct wqkit_timed_work *items)
{
	if (!region.stamps)
		return 0;
	region.base = &items[0].work;
	region.stride = sizeof(*items);
	region.nr = nr;
	return wq_measure_register(&region);
}

static void insert_exec_phases_unmark(void)
{
	if (region.stamps)
		wq_measure_unregister(&region);
}

static void insert_exec_phases_free(void)
{
	vfree(region.stamps);
	region.stamps = NULL;
}
#else
static int insert_exec_phases_alloc(void) { return 0; }
static void insert_exec_phases_publish(void) { }
static int insert_exec_phases_mark(struct wqkit_timed_work *items) { return 0; }
static void insert_exec_phases_unmark(void) { }
static void insert_exec_phases_free(void) { }
#endif

static void insert_exec_work_fn(struct work_struct *work)
{
	wqkit_timed_work_started(&xp.rec, work, rdtsc_ordered());
}

static void insert_exec_calibrate_one(u32 seq)
{
	struct wqkit_sample sample = { .seq = seq, .pid = current->pid };

	preempt_disable();
	sample.t0 = rdtsc_ordered();
	sample.t1 = rdtsc_ordered();
	sample.cpu_queue = smp_processor_id();
	sample.cpu_exec = sample.cpu_queue;
	preempt_enable();
	wqkit_recorder_put(&xp.rec, &sample);
}

static void insert_exec_pace(void)
{
	if (gap_us >= 10)
		usleep_range(gap_us, gap_us + gap_us / 8);
	else if (gap_us)
		udelay(gap_us);
}

static int insert_exec_run(void *unused)
{
	struct wqkit_timed_work *items = xp.items;
	unsigned int i;
	int ret;

	ret = insert_exec_phases_mark(items);
	if (ret) {
		pr_err("cannot mark the work items for the kernel's timestamps (%d)\n", ret);
		wqkit_recorder_finish(&xp.rec, ret);
		return 0;
	}
	for (i = 0; i < nr; i++) {
		struct wqkit_timed_work *item = &items[i];

		if (kthread_should_stop())
			break;
		if (calibrate) {
			insert_exec_calibrate_one(i);
		} else {
			INIT_WORK(&item->work, insert_exec_work_fn);
			item->seq = i;
			wqkit_timed_work_queue(item, xp.wq, cpu);
			if (serial)
				flush_work(&item->work);
			else
				insert_exec_pace();
		}
		if (!(i % 256))
			cond_resched();
	}
	flush_workqueue(xp.wq);
	insert_exec_phases_unmark();
	wqkit_recorder_finish(&xp.rec, i == nr ? 0 : -EINTR);
	return 0;
}

static int __init insert_exec_init(void)
{
	struct wqkit_experiment_desc desc = {
		.item_size = sizeof(struct wqkit_timed_work),
		.run = insert_exec_run,
	};
	int ret;

	wqkit_declared_desc(&desc);
	ret = wqkit_check_params();
	if (ret)
		return ret;
	if (serial && gap_us) {
		pr_err("serial=1 and gap_us=%u exclude each other\n", gap_us);
		return -EINVAL;
	}
	ret = insert_exec_phases_alloc();
	if (ret)
		return ret;
	ret = wqkit_experiment_start(&xp, &desc);
	if (ret) {
		insert_exec_phases_free();
		return ret;
	}
	insert_exec_phases_publish();
	wqkit_pr_params("started");
	return 0;
}

static void __exit insert_exec_exit(void)
{
	wqkit_experiment_stop(&xp);
	insert_exec_phases_free();
	pr_info("unloaded\n");
}

module_init(insert_exec_init);
module_exit(insert_exec_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: queue_work_on() to execution latency in TSC cycles");
