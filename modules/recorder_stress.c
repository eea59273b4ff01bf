// SPDX-License-Identifier: GPL-2.0
/*
 * wq_recorder_stress - a stress test of the shared sample recorder.
 *
 * @producers kernel threads each offer every slot of a recorder of @nr
 * slots, @rounds times over, starting at different offsets: every slot has
 * several competing producers, so all but one sample per slot must be
 * counted as dropped and none may overwrite a published record. Each record
 * carries a pattern derived from its seq, so user space can check that every
 * exported record is complete. A reader may race the producers (reading
 * samples seals the recorder), the stop file stops them, and unloading the
 * module mid-run must leave nothing behind.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/task.h>

#include "wqkit_experiment.h"
#include "recorder_stress_params.h"

static struct wqkit_recorder rec;
static struct task_struct *threads[WQKIT_PRODUCERS_MAX];
static atomic_t running;

/* The record of @seq: user space recomputes it (wqkit's test_recorder_stress). */
static void stress_fill(struct wqkit_sample *s, u32 seq)
{
	s->seq = seq;
	s->t0 = ((u64)seq << 32) | 0xa5a5a5a5;
	s->t1 = ~s->t0;
	s->pid = seq ^ 0x5a5a5a5a;
	s->cpu_queue = seq & 0xffff;
	s->cpu_exec = seq >> 16;
}

static int stress_produce(void *arg)
{
	u32 offset = (u32)(uintptr_t)arg * (nr / producers);
	struct wqkit_sample sample = {};
	unsigned int round;
	u32 i;

	for (round = 0; round < rounds; round++) {
		for (i = 0; i < nr; i++) {
			if (kthread_should_stop())
				goto out;
			stress_fill(&sample, (i + offset) % nr);
			wqkit_recorder_put(&rec, &sample);
			if (!(i % 1024))
				cond_resched();
		}
	}
out:
	if (atomic_dec_and_test(&running))
		wqkit_recorder_finish(&rec, round == rounds ? 0 : -EINTR);
	/* Stay until kthread_stop(): the stop path owns every thread's end. */
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

static void stress_stop(struct wqkit_recorder *r)
{
	unsigned int i;

	for (i = 0; i < producers; i++) {
		if (threads[i]) {
			kthread_stop(threads[i]);
			put_task_struct(threads[i]);
			threads[i] = NULL;
		}
	}
}

static int __init stress_init(void)
{
	unsigned int i;
	int ret;

	ret = wqkit_check_params();
	if (ret)
		return ret;
	ret = wqkit_recorder_init(&rec, "recorder_stress", nr, stress_stop);
	if (ret)
		return ret;
	atomic_set(&running, producers);
	for (i = 0; i < producers; i++) {
		struct task_struct *t = kthread_create(stress_produce, (void *)(uintptr_t)i,
						       "wqkit_stress/%u", i);

		if (IS_ERR(t)) {
			ret = PTR_ERR(t);
			goto err;
		}
		threads[i] = get_task_struct(t);
	}
	for (i = 0; i < producers; i++)
		wake_up_process(threads[i]);
	pr_info("started: nr=%u producers=%u rounds=%u\n", nr, producers, rounds);
	return 0;
err:
	stress_stop(&rec);
	wqkit_recorder_destroy(&rec);
	return ret;
}

static void __exit stress_exit(void)
{
	wqkit_recorder_stop(&rec);
	wqkit_recorder_destroy(&rec);
	pr_info("unloaded\n");
}

module_init(stress_init);
module_exit(stress_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: stress test of the lock-free sample recorder");
