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

#define NR_MAX		10000000
#define LOOPS_MAX	1000000000
#define MEM_KB_MAX	(256 * 1024)

static unsigned int nr = 1000;
module_param(nr, uint, 0444);
MODULE_PARM_DESC(nr, "executions to time (1..10000000)");
static unsigned int loops = 10000;
module_param(loops, uint, 0444);
MODULE_PARM_DESC(loops, "busy-loop iterations per execution (0..1000000000)");
static unsigned int mem_kb;
module_param(mem_kb, uint, 0444);
MODULE_PARM_DESC(mem_kb, "KiB of memory written per execution, one write per cache line (0..262144)");
static unsigned int wq_flags;
module_param(wq_flags, uint, 0444);
MODULE_PARM_DESC(wq_flags, "0x1 unbound, 0x2 highpri, 0x4 cpu_intensive");
static int cpu = -1;
module_param(cpu, int, 0444);
MODULE_PARM_DESC(cpu, "CPU to queue on and run the runner on (-1 = any)");

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
	const struct wqkit_experiment_desc desc = {
		.name = "exec_time_pred",
		.nr = nr,
		.item_size = sizeof(struct exec_time_item),
		.wq_flags = wq_flags,
		.cpu = cpu,
		.run = exec_time_run,
	};
	int ret;

	ret = wqkit_check_range("nr", nr, 1, NR_MAX) ?:
	      wqkit_check_range("loops", loops, 0, LOOPS_MAX) ?:
	      wqkit_check_range("mem_kb", mem_kb, 0, MEM_KB_MAX) ?:
	      wqkit_check_cpu(cpu) ?:
	      wqkit_check_wq_flags(wq_flags);
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
	pr_info("started: nr=%u loops=%u mem_kb=%u wq_flags=0x%x cpu=%d\n",
		nr, loops, mem_kb, wq_flags, cpu);
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
