// SPDX-License-Identifier: GPL-2.0
/*
 * Worker death on a kernel with linux_patch_exp/'s tracepoints (the C twin
 * of ../bpftrace/worker_death_tracepoints.bt): from
 * workqueue_worker_dying_start to workqueue_worker_dying_end (task exited).
 */
#include "worker_death.h"

SEC("tp/workqueue/workqueue_worker_dying_start")
int dying_start(struct trace_event_raw_workqueue_worker_dying_start *ctx)
{
	told_to_die(ctx, ctx->pid, ctx->pool_id);
	return 0;
}

SEC("tp/workqueue/workqueue_worker_dying_end")
int dying_end(struct trace_event_raw_workqueue_worker_dying_end *ctx)
{
	died(ctx, ctx->pid);
	return 0;
}
