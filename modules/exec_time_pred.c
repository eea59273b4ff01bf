// SPDX-License-Identifier: GPL-2.0
/*
 * wq_exec_time_pred - how stable one work item's execution time is.
 *
 * A runner thread queues the same work function @nr times, one at a time
 * (each execution ends before the next is queued), on a workqueue of the
 * module's own. The work function runs a payload: a busy loop of @loops
 * iterations and/or a write to every cache line of a @mem_kb KiB buffer.
 * Per execution it records the TSC at its first and last instruction, the
 * queuing and the executing CPU.
 *
 * Samples and counters are in /sys/kernel/debug/wqkit/exec_time_pred/.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cache.h>
#include <linux/compiler.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/vmalloc.h>
#include <asm/msr.h>

#include "wqkit_experiment.h"
#include "exec_time_pred_params.h"

struct exec_time_item {
	struct work_struct work;
	u32 seq;
	u16 cpu_queue;
};

static struct wqkit_experiment xp;
static u8 *payload_mem;
static u64 payload_sink;

static noinline u64 exec_time_busy_loop(unsigned int n)
{
	u64 acc = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		acc += i;
		barrier();
	}
	return acc;
}

static void exec_time_touch_memory(void)
{
	size_t off, size = (size_t)mem_kb * 1024;

	for (off = 0; off < size; off += L1_CACHE_BYTES)
		WRITE_ONCE(payload_mem[off], payload_mem[off] + 1);
}

static void exec_time_work_fn(struct work_struct *work)
{
	u64 t0 = rdtsc_ordered();
	struct exec_time_item *item = container_of(work, struct exec_time_item, work);
	struct wqkit_sample sample = {
		.seq = item->seq,
		.pid = current->pid,
		.cpu_queue = item->cpu_queue,
	};

	WRITE_ONCE(payload_sink, exec_time_busy_loop(loops));
	if (payload_mem)
		exec_time_touch_memory();
	sample.t1 = rdtsc_ordered();
	sample.t0 = t0;
	sample.cpu_exec = raw_smp_processor_id();
	wqkit_recorder_put(&xp.rec, &sample);
}

static int exec_time_run(void *unused)
{
	struct exec_time_item *items = xp.items;
	int target = cpu >= 0 ? cpu : WORK_CPU_UNBOUND;
	unsigned int i;

	for (i = 0; i < nr && !kthread_should_stop(); i++) {
		struct exec_time_item *item = &items[i];

		INIT_WORK(&item->work, exec_time_work_fn);
		item->seq = i;
		/* The CPU read and the queueing happen on the same CPU. */
		preempt_disable();
		item->cpu_queue = smp_processor_id();
		queue_work_on(target, xp.wq, &item->work);
		preempt_enable();
		flush_work(&item->work);
		cond_resched();
	}
	wqkit_recorder_finish(&xp.rec, i == nr ? 0 : -EINTR);
	return 0;
}

static int __init exec_time_init(void)
{
	struct wqkit_experiment_desc desc = {
		.item_size = sizeof(struct exec_time_item),
		.run = exec_time_run,
	};
	int ret;

	wqkit_declared_desc(&desc);
	ret = wqkit_check_params();
	if (ret)
		return ret;
	if (mem_kb) {
		payload_mem = vzalloc((size_t)mem_kb * 1024);
		if (!payload_mem)
			return -ENOMEM;
	}
	ret = wqkit_experiment_start(&xp, &desc);
	if (ret) {
		vfree(payload_mem);
		return ret;
	}
	wqkit_pr_params("started");
	return 0;
}

static void __exit exec_time_exit(void)
{
	wqkit_experiment_stop(&xp);
	vfree(payload_mem);
	pr_info("unloaded\n");
}

module_init(exec_time_init);
module_exit(exec_time_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: execution time of one work function, execution after execution");
