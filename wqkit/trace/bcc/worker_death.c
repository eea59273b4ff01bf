// SPDX-License-Identifier: GPL-2.0
/*
 * Worker death on a stock kernel (the C twin of ../bpftrace/worker_death.bt):
 * from set_worker_dying() (the worker is told to die) to the exit of its task
 * (sched_process_exit).
 */
#include "worker_death.h"

SEC("kprobe/set_worker_dying")
int BPF_KPROBE(set_worker_dying, struct worker *worker)
{
	told_to_die(ctx, BPF_CORE_READ(worker, task, pid), BPF_CORE_READ(worker, pool, id));
	return 0;
}

/*
 * Read through sched_process_template's record: since 6.16 sched_process_exit
 * has an event of its own (with group_dead), kept a superset of that template.
 */
SEC("tp/sched/sched_process_exit")
int process_exit(struct trace_event_raw_sched_process_template *ctx)
{
	died(ctx, ctx->pid);
	return 0;
}
