/*
 * Worker death on a kernel with linux_patch_exp/'s tracepoints (BCC twin of
 * ../bpftrace/worker_death_tracepoints.bt): from workqueue_worker_dying_start
 * to workqueue_worker_dying_end (task exited).
 */
BPF_HASH(dying, u32, u64);
BPF_HISTOGRAM(duration_ns, int, 64);

TRACEPOINT_PROBE(workqueue, workqueue_worker_dying_start)
{
	u32 pid = args->pid;
	struct wqkit_event ev = { .kind = EV_DYING, .pid = pid, .pool = args->pool_id };

	ev.v[0] = bpf_ktime_get_ns();
	dying.update(&pid, &ev.v[0]);
	events.perf_submit(args, &ev, sizeof(ev));
	return 0;
}

TRACEPOINT_PROBE(workqueue, workqueue_worker_dying_end)
{
	u32 pid = args->pid;
	u64 *told = dying.lookup(&pid);
	struct wqkit_event ev = { .kind = EV_DEAD, .pid = pid };

	if (!told)
		return 0;
	ev.v[0] = bpf_ktime_get_ns() - *told;
	duration_ns.increment(wqkit_slot(ev.v[0]));
	events.perf_submit(args, &ev, sizeof(ev));
	dying.delete(&pid);
	return 0;
}
