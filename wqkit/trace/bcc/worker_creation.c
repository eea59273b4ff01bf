// SPDX-License-Identifier: GPL-2.0
/*
 * Worker creation (the C twin of ../bpftrace/worker_creation.bt): each
 * create_worker() call (entry -> return), the new worker's pid and pool, and
 * each worker's first item since the trace began; when each item of the
 * flood (queued on FLOOD_WQ) was queued, and when the first one was.
 */
#include "wqkit.bpf.h"

const volatile char FLOOD_WQ[WQKIT_NAME_LEN] = "";

WQKIT_HASH(started, u32, u64);
WQKIT_HASH(pool_of, u32, s32);
WQKIT_HASH(seen, u32, u8);
WQKIT_HISTOGRAM(duration_ns);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} flood SEC(".maps");

SEC("kprobe/create_worker")
int BPF_KPROBE(create_worker_entry, struct worker_pool *pool)
{
	u32 tid = bpf_get_current_pid_tgid();
	u64 now = bpf_ktime_get_ns();
	s32 id = BPF_CORE_READ(pool, id);

	bpf_map_update_elem(&started, &tid, &now, BPF_ANY);
	bpf_map_update_elem(&pool_of, &tid, &id, BPF_ANY);
	return 0;
}

SEC("kretprobe/create_worker")
int BPF_KRETPROBE(create_worker_exit, struct worker *worker)
{
	u32 tid = bpf_get_current_pid_tgid();
	u64 *t0 = bpf_map_lookup_elem(&started, &tid);
	s32 *pool = bpf_map_lookup_elem(&pool_of, &tid);
	struct wqkit_event ev = {};

	if (!t0 || !pool)
		return 0;
	ev.v[0] = bpf_ktime_get_ns() - *t0;
	ev.v[1] = *t0;
	ev.v[2] = tid;		/* the caller: the pool's manager */
	ev.pool = *pool;
	if (worker) {
		ev.kind = EV_CREATE;
		ev.pid = BPF_CORE_READ(worker, task, pid);
	} else {
		ev.kind = EV_FAILED;
	}
	wqkit_count(&hist_duration_ns, ev.v[0]);
	wqkit_emit(ctx, &ev);
	bpf_map_delete_elem(&started, &tid);
	bpf_map_delete_elem(&pool_of, &tid);
	return 0;
}

SEC("tp/workqueue/workqueue_queue_work")
int queue_work(struct trace_event_raw_workqueue_queue_work *ctx)
{
	char name[WQKIT_NAME_LEN] = {};
	struct wqkit_event ev = { .kind = EV_FLOOD };
	u32 zero = 0;
	u64 *first = bpf_map_lookup_elem(&flood, &zero);

	if (!first)
		return 0;
	WQKIT_READ_DATA_LOC(name, ctx, workqueue);
	if (!wqkit_same_name(name, FLOOD_WQ))
		return 0;
	ev.v[0] = bpf_ktime_get_ns();
	if (!*first) {
		*first = ev.v[0];
		wqkit_emit(ctx, &ev);
	}
	ev.kind = EV_QUEUED;
	wqkit_emit(ctx, &ev);
	return 0;
}

SEC("tp/workqueue/workqueue_execute_start")
int execute_start(struct trace_event_raw_workqueue_execute_start *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct wqkit_event ev = { .kind = EV_FIRST, .pid = tid };
	u8 one = 1;

	if (bpf_map_lookup_elem(&seen, &tid))
		return 0;
	bpf_map_update_elem(&seen, &tid, &one, BPF_ANY);
	ev.v[0] = bpf_ktime_get_ns();
	wqkit_emit(ctx, &ev);
	return 0;
}
