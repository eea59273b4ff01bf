/*
 * What every wqkit BCC program sends to run.py: one struct wqkit_event per
 * line of output (run.py prints it as the matching bpftrace program would).
 * run.py puts this file in front of the program's own text.
 */
#include <linux/sched.h>

enum wqkit_event_kind {
	EV_FLOOD = 1,	/* v[0]: ns of the flood's first queue_work */
	EV_CREATE,	/* pid, pool, v[0]: create_worker() duration, v[1]: its start ns, v[2]: caller */
	EV_FAILED,	/* pool, v[0], v[1], v[2]: the same, for a create_worker() that failed */
	EV_FIRST,	/* pid, v[0]: ns of a new worker's first work item */
	EV_DYING,	/* pid, pool, v[0]: ns the worker was told to die */
	EV_DEAD,	/* pid, v[0]: told to die -> task exit */
	EV_ITEM,	/* v: work, function, queue, activate, start, end ns; cpu, pid, name */
	EV_QUEUED,	/* v[0]: ns a flood item was queued */
};

struct wqkit_event {
	u64 v[6];
	u32 kind;
	s32 pid;
	s32 pool;
	u32 cpu;
	char name[32];
};

BPF_PERF_OUTPUT(events);

/* log2 slot: 0 holds 0, slot k >= 1 holds [2^(k-1), 2^k), as bpftrace's hist(). */
static inline int wqkit_slot(u64 value)
{
	return value ? bpf_log2l(value) : 0;
}

/* A kernel pointer stored at @base + @offset. */
static inline void *wqkit_read_ptr(void *base, int offset)
{
	void *value = NULL;

	bpf_probe_read_kernel(&value, sizeof(value), base + offset);
	return value;
}

/* The pid of the task that struct worker @worker runs as. */
static inline s32 wqkit_worker_pid(void *worker)
{
	struct task_struct *task = wqkit_read_ptr(worker, worker__task);
	s32 pid = 0;

	bpf_probe_read_kernel(&pid, sizeof(pid), &task->pid);
	return pid;
}

/* The id of struct worker_pool @pool. */
static inline s32 wqkit_pool_id(void *pool)
{
	s32 id = -1;

	bpf_probe_read_kernel(&id, sizeof(id), pool + worker_pool__id);
	return id;
}
