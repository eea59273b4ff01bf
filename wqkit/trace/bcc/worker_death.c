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
 * Since 6.16 sched_process_exit has a record of its own (with group_dead), and
 * sched_process_template's comm is a dynamic string in 7.x: the pid is at
 * another offset in each. Which record this kernel has is asked of its BTF
 * (the ___exit flavour matches trace_event_raw_sched_process_exit); the branch
 * the kernel lacks is dead code to the verifier.
 */
struct trace_event_raw_sched_process_exit___exit {
	pid_t pid;
} __attribute__((preserve_access_index));

SEC("tp/sched/sched_process_exit")
int process_exit(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_sched_process_exit___exit))
		died(ctx, ((struct trace_event_raw_sched_process_exit___exit *)ctx)->pid);
	else
		died(ctx, ((struct trace_event_raw_sched_process_template *)ctx)->pid);
	return 0;
}
