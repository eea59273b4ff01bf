/*
 * Worker creation (BCC twin of ../bpftrace/worker_creation.bt): each
 * create_worker() call (entry -> return), the new worker's pid and pool, and
 * the time from the start of the flood (the first item queued on FLOOD_WQ)
 * to each new worker's first work item; when each flood item was queued.
 */
BPF_HASH(started, u32, u64);
BPF_HASH(pool_of, u32, s32);
BPF_HASH(seen, u32, u8);
BPF_ARRAY(flood, u64, 1);
BPF_HISTOGRAM(duration_ns, int, 64);

int kprobe__create_worker(struct pt_regs *ctx, void *pool)
{
	u32 tid = bpf_get_current_pid_tgid();
	u64 now = bpf_ktime_get_ns();
	s32 id = wqkit_pool_id(pool);

	started.update(&tid, &now);
	pool_of.update(&tid, &id);
	return 0;
}

int kretprobe__create_worker(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	u64 *t0 = started.lookup(&tid);
	s32 *pool = pool_of.lookup(&tid);
	void *worker = (void *)PT_REGS_RC(ctx);
	struct wqkit_event ev = {};

	if (!t0 || !pool)
		return 0;
	ev.v[0] = bpf_ktime_get_ns() - *t0;
	ev.v[1] = *t0;
	ev.v[2] = tid;		/* the caller: the pool's manager */
	ev.pool = *pool;
	if (worker) {
		ev.kind = EV_CREATE;
		ev.pid = wqkit_worker_pid(worker);
	} else {
		ev.kind = EV_FAILED;
	}
	duration_ns.increment(wqkit_slot(ev.v[0]));
	events.perf_submit(ctx, &ev, sizeof(ev));
	started.delete(&tid);
	pool_of.delete(&tid);
	return 0;
}

TRACEPOINT_PROBE(workqueue, workqueue_queue_work)
{
	const char want[] = FLOOD_WQ;
	char name[sizeof(want)] = {};
	struct wqkit_event ev = { .kind = EV_FLOOD };
	int zero = 0;
	u64 *first = flood.lookup(&zero);

	if (!first)
		return 0;
	TP_DATA_LOC_READ_STR(name, workqueue, sizeof(name));
	for (int i = 0; i < sizeof(want); i++)
		if (name[i] != want[i])
			return 0;
	ev.v[0] = bpf_ktime_get_ns();
	if (!*first) {
		*first = ev.v[0];
		events.perf_submit(args, &ev, sizeof(ev));
	}
	ev.kind = EV_QUEUED;
	events.perf_submit(args, &ev, sizeof(ev));
	return 0;
}

/*
 * Each worker's first item since the trace began (wqkit keeps those of the
 * workers created). Not keyed on the kretprobe: create_worker() wakes the new
 * worker before it returns, and the worker may run its first item first.
 */
TRACEPOINT_PROBE(workqueue, workqueue_execute_start)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct wqkit_event ev = { .kind = EV_FIRST, .pid = tid };
	u8 one = 1;

	if (seen.lookup(&tid))
		return 0;
	seen.update(&tid, &one);
	ev.v[0] = bpf_ktime_get_ns();
	events.perf_submit(args, &ev, sizeof(ev));
	return 0;
}
