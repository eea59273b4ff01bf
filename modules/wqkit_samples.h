/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wqkit_samples - lossless hand-off of fixed-size timing samples to user space.
 *
 * Every experiment knows up front how many samples it will produce (one per
 * work item), so the recorder preallocates one slot per sample and slot @seq
 * is written by exactly one producer: no lock, no ring to wrap, nothing to
 * lose while the experiment runs. Relay or a ring buffer would be needed for
 * an unbounded stream; here a flat array read once through debugfs is
 * simpler and lossless by construction. Counters for produced, dropped
 * (a slot out of range or written twice) and exported samples let user
 * space check that nothing went missing.
 *
 * debugfs layout, under /sys/kernel/debug/wqkit/<experiment>/:
 *   samples  binary array of struct wqkit_sample (capacity entries; slots
 *            never written have WQKIT_SAMPLE_VALID clear)
 *   stats    one line of key=value: state, capacity, produced, dropped,
 *            exported, error, tsc_khz
 */
#ifndef _WQKIT_SAMPLES_H
#define _WQKIT_SAMPLES_H

#include <linux/atomic.h>
#include <linux/types.h>

#define WQKIT_SAMPLE_VALID	0x1

/* 32 bytes, little-endian; wqkit/samples.py mirrors this layout. */
struct wqkit_sample {
	__u64 t0;		/* TSC at the first timestamp (queue or start) */
	__u64 t1;		/* TSC at the second timestamp (execution or end) */
	__u32 seq;		/* work item index, 0..nr-1 */
	__u32 pid;		/* task that executed the work item */
	__u16 cpu_queue;	/* CPU that queued the work item */
	__u16 cpu_exec;		/* CPU that executed it */
	__u32 flags;		/* WQKIT_SAMPLE_* */
};

enum wqkit_state {
	WQKIT_RUNNING,
	WQKIT_DONE,
	WQKIT_FAILED,
};

struct wqkit_recorder {
	struct wqkit_sample *samples;
	u32 capacity;
	atomic_t produced;
	atomic_t dropped;
	atomic64_t exported;
	enum wqkit_state state;
	int error;
	struct dentry *dir;
};

int wqkit_recorder_init(struct wqkit_recorder *rec, const char *name, u32 capacity);
void wqkit_recorder_put(struct wqkit_recorder *rec, const struct wqkit_sample *sample);
void wqkit_recorder_finish(struct wqkit_recorder *rec, int error);
void wqkit_recorder_destroy(struct wqkit_recorder *rec);

#endif /* _WQKIT_SAMPLES_H */
