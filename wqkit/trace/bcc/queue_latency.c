// SPDX-License-Identifier: GPL-2.0
/*
 * Queue -> execute latency from the workqueue tracepoints (the C twin of
 * ../bpftrace/queue_latency.bt): for each work item queued on one of the
 * workqueues WQ0..WQ7 (all of them when WQ0 is "*"; unused ones are "-"),
 * the times of workqueue_queue_work, _activate_work, _execute_start and
 * _execute_end.
 * An item's record moves from "pending" to "running" when it starts, so a
 * work item that requeues itself while it runs starts a new record.
 * Updates that do not fit the maps (MAP_KEYS items between queue and end)
 * are counted in "missed".
 */
#include "wqkit.bpf.h"

const volatile char WQ0[WQKIT_NAME_LEN] = "*";
const volatile char WQ1[WQKIT_NAME_LEN] = "-";
const volatile char WQ2[WQKIT_NAME_LEN] = "-";
const volatile char WQ3[WQKIT_NAME_LEN] = "-";
const volatile char WQ4[WQKIT_NAME_LEN] = "-";
const volatile char WQ5[WQKIT_NAME_LEN] = "-";
const volatile char WQ6[WQKIT_NAME_LEN] = "-";
const volatile char WQ7[WQKIT_NAME_LEN] = "-";

struct pending_item {
	u64 queued;
	u64 activated;
	char name[WQKIT_NAME_LEN];
};

struct running_item {
	struct pending_item at;
	u64 started;
};

WQKIT_HASH(pending, u64, struct pending_item);
WQKIT_HASH(running, u64, struct running_item);
WQKIT_HISTOGRAM(latency_ns);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} missed SEC(".maps");

static __always_inline void count_missed(void)
{
	u32 zero = 0;
	u64 *count = bpf_map_lookup_elem(&missed, &zero);

	if (count)
		__sync_fetch_and_add(count, 1);
}

static __always_inline bool traced(const char *name)
{
	return WQ0[0] == '*' && !WQ0[1] ? true :
		wqkit_same_name(name, WQ0) || wqkit_same_name(name, WQ1) ||
		wqkit_same_name(name, WQ2) || wqkit_same_name(name, WQ3) ||
		wqkit_same_name(name, WQ4) || wqkit_same_name(name, WQ5) ||
		wqkit_same_name(name, WQ6) || wqkit_same_name(name, WQ7);
}

SEC("tp/workqueue/workqueue_queue_work")
int queue_work(struct trace_event_raw_workqueue_queue_work *ctx)
{
	struct pending_item item = {};
	u64 work = (u64)ctx->work;

	WQKIT_READ_DATA_LOC(item.name, ctx, workqueue);
	if (!traced(item.name))
		return 0;
	item.queued = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&pending, &work, &item, BPF_ANY))
		count_missed();
	return 0;
}

SEC("tp/workqueue/workqueue_activate_work")
int activate_work(struct trace_event_raw_workqueue_activate_work *ctx)
{
	u64 work = (u64)ctx->work;
	struct pending_item *item = bpf_map_lookup_elem(&pending, &work);

	if (item)
		item->activated = bpf_ktime_get_ns();
	return 0;
}

SEC("tp/workqueue/workqueue_execute_start")
int execute_start(struct trace_event_raw_workqueue_execute_start *ctx)
{
	u64 work = (u64)ctx->work;
	struct pending_item *item = bpf_map_lookup_elem(&pending, &work);
	struct running_item run = {};

	if (!item)
		return 0;
	run.started = bpf_ktime_get_ns();
	__builtin_memcpy(&run.at, item, sizeof(*item));
	if (bpf_map_update_elem(&running, &work, &run, BPF_ANY))
		count_missed();
	bpf_map_delete_elem(&pending, &work);
	return 0;
}

SEC("tp/workqueue/workqueue_execute_end")
int execute_end(struct trace_event_raw_workqueue_execute_end *ctx)
{
	u64 work = (u64)ctx->work;
	struct running_item *run = bpf_map_lookup_elem(&running, &work);
	struct wqkit_event ev = { .kind = EV_ITEM };

	if (!run)
		return 0;
	ev.v[0] = work;
	ev.v[1] = (u64)ctx->function;
	bpf_snprintf(ev.symbol, sizeof(ev.symbol), "%ps", &ev.v[1], sizeof(ev.v[1]));
	ev.v[2] = run->at.queued;
	ev.v[3] = run->at.activated;
	ev.v[4] = run->started;
	ev.v[5] = bpf_ktime_get_ns();
	ev.cpu = bpf_get_smp_processor_id();
	ev.pid = bpf_get_current_pid_tgid();
	__builtin_memcpy(ev.name, run->at.name, sizeof(ev.name));
	wqkit_count(&hist_latency_ns, ev.v[4] - ev.v[2]);
	wqkit_emit(ctx, &ev);
	bpf_map_delete_elem(&running, &work);
	return 0;
}
