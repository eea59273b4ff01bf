/*
 * Queue -> execute latency from the workqueue tracepoints (BCC twin of
 * ../bpftrace/queue_latency.bt): for each work item queued on one of the
 * workqueues WQ0..WQ7 (all of them when WQ0 is "*"; unused ones are "-"),
 * the times of workqueue_queue_work, _activate_work, _execute_start and
 * _execute_end.
 * An item's record moves from "pending" to "running" when it starts, so a
 * work item that requeues itself while it runs starts a new record.
 * Updates that do not fit the maps (MAP_KEYS items between queue and end)
 * are counted in "missed".
 */

struct pending_item {
	u64 queued;
	u64 activated;
	char name[32];
};

struct running_item {
	struct pending_item at;
	u64 started;
};

BPF_HASH(pending, u64, struct pending_item, MAP_KEYS);
BPF_HASH(running, u64, struct running_item, MAP_KEYS);
BPF_ARRAY(missed, u64, 1);
BPF_HISTOGRAM(latency_ns, int, 64);

static inline void count_missed(void)
{
	int zero = 0;
	u64 *count = missed.lookup(&zero);

	if (count)
		__sync_fetch_and_add(count, 1);
}

#define WQKIT_IS(want) ({						\
	const char __want[] = want;					\
	int __same = 1;							\
	for (int __i = 0; __i < sizeof(__want); __i++)			\
		if (item.name[__i] != __want[__i]) {			\
			__same = 0;					\
			break;						\
		}							\
	__same; })

TRACEPOINT_PROBE(workqueue, workqueue_queue_work)
{
	const char all[] = WQ0;
	struct pending_item item = {};
	u64 work = (u64)args->work;

	TP_DATA_LOC_READ_STR(item.name, workqueue, sizeof(item.name));
	if (all[0] != '*' &&
	    !(WQKIT_IS(WQ0) || WQKIT_IS(WQ1) || WQKIT_IS(WQ2) || WQKIT_IS(WQ3) ||
	      WQKIT_IS(WQ4) || WQKIT_IS(WQ5) || WQKIT_IS(WQ6) || WQKIT_IS(WQ7)))
		return 0;
	item.queued = bpf_ktime_get_ns();
	if (pending.update(&work, &item))
		count_missed();
	return 0;
}

TRACEPOINT_PROBE(workqueue, workqueue_activate_work)
{
	u64 work = (u64)args->work;
	struct pending_item *item = pending.lookup(&work);

	if (item)
		item->activated = bpf_ktime_get_ns();
	return 0;
}

TRACEPOINT_PROBE(workqueue, workqueue_execute_start)
{
	u64 work = (u64)args->work;
	struct pending_item *item = pending.lookup(&work);
	struct running_item run = {};

	if (!item)
		return 0;
	run.started = bpf_ktime_get_ns();
	__builtin_memcpy(&run.at, item, sizeof(*item));
	if (running.update(&work, &run))
		count_missed();
	pending.delete(&work);
	return 0;
}

TRACEPOINT_PROBE(workqueue, workqueue_execute_end)
{
	u64 work = (u64)args->work;
	struct running_item *run = running.lookup(&work);
	struct wqkit_event ev = { .kind = EV_ITEM };

	if (!run)
		return 0;
	ev.v[0] = work;
	ev.v[1] = (u64)args->function;
	ev.v[2] = run->at.queued;
	ev.v[3] = run->at.activated;
	ev.v[4] = run->started;
	ev.v[5] = bpf_ktime_get_ns();
	ev.cpu = bpf_get_smp_processor_id();
	ev.pid = bpf_get_current_pid_tgid();
	__builtin_memcpy(ev.name, run->at.name, sizeof(ev.name));
	latency_ns.increment(wqkit_slot(ev.v[4] - ev.v[2]));
	events.perf_submit(args, &ev, sizeof(ev));
	running.delete(&work);
	return 0;
}
