/*
 * Worker death (BCC twin of ../bpftrace/worker_death.bt): from the moment a
 * worker is told to die to the exit of its task. On a stock kernel that is
 * set_worker_dying() to sched_process_exit; with WQKIT_DYING_TRACEPOINTS
 * (worker_death_tracepoints.c), linux_patch_exp/'s
 * workqueue_worker_dying_start to workqueue_worker_dying_end.
 */
BPF_HASH(dying, u32, u64);
BPF_HISTOGRAM(duration_ns, int, 64);

static inline void told_to_die(void *ctx, u32 pid, s32 pool)
{
	struct wqkit_event ev = { .kind = EV_DYING, .pid = pid, .pool = pool };

	ev.v[0] = bpf_ktime_get_ns();
	dying.update(&pid, &ev.v[0]);
	events.perf_submit(ctx, &ev, sizeof(ev));
}

static inline void died(void *ctx, u32 pid)
{
	u64 *told = dying.lookup(&pid);
	struct wqkit_event ev = { .kind = EV_DEAD, .pid = pid };

	if (!told)
		return;
	ev.v[0] = bpf_ktime_get_ns() - *told;
	duration_ns.increment(wqkit_slot(ev.v[0]));
	events.perf_submit(ctx, &ev, sizeof(ev));
	dying.delete(&pid);
}

#ifdef WQKIT_DYING_TRACEPOINTS
TRACEPOINT_PROBE(workqueue, workqueue_worker_dying_start)
{
	told_to_die(args, args->pid, args->pool_id);
	return 0;
}

TRACEPOINT_PROBE(workqueue, workqueue_worker_dying_end)
{
	died(args, args->pid);
	return 0;
}
#else
int kprobe__set_worker_dying(struct pt_regs *ctx, void *worker)
{
	told_to_die(ctx, wqkit_worker_pid(worker), wqkit_pool_id(wqkit_read_ptr(worker, worker__pool)));
	return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
	died(args, args->pid);
	return 0;
}
#endif
