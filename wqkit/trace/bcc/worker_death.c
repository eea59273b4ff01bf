/*
 * Worker death on a stock kernel (BCC twin of ../bpftrace/worker_death.bt):
 * from set_worker_dying() (the worker is told to die) to the exit of its
 * task (sched_process_exit).
 */
BPF_HASH(dying, u32, u64);
BPF_HISTOGRAM(duration_ns, int, 64);

int kprobe__set_worker_dying(struct pt_regs *ctx, void *worker)
{
	struct wqkit_event ev = { .kind = EV_DYING };
	u32 pid = wqkit_worker_pid(worker);

	ev.pid = pid;
	ev.pool = wqkit_pool_id(wqkit_read_ptr(worker, worker__pool));
	ev.v[0] = bpf_ktime_get_ns();
	dying.update(&pid, &ev.v[0]);
	events.perf_submit(ctx, &ev, sizeof(ev));
	return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
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
