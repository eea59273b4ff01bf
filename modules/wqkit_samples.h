/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wqkit_samples - lossless hand-off of fixed-size timing samples to user space.
 *
 * Every experiment knows up front how many samples it will produce (one per
 * work item), so the recorder preallocates one slot per sample: no lock, no
 * ring to wrap, nothing to lose while the experiment runs. Relay or a ring
 * buffer would be needed for an unbounded stream; here a flat array read
 * once through debugfs is simpler and lossless by construction.
 *
 * Correctness under the kernel memory model, not by luck of x86:
 *  - a producer claims slot @seq with cmpxchg (EMPTY -> CLAIMED), so a
 *    second producer of the same seq is counted as dropped and never
 *    overwrites; it fills the slot, then publishes it with
 *    smp_store_release(flags = VALID);
 *  - the reader loads each slot's flags with smp_load_acquire() and copies
 *    the record only when VALID, so a half-written record is never exported
 *    (it reads as an empty slot);
 *  - the first read seals the recorder: a sample offered after that is
 *    dropped, and the reader first waits for the producers already inside
 *    wqkit_recorder_put(), so every stored sample is exported.
 * Hence produced = exported + dropped once the producers have stopped
 * (stop file, or the experiment done), which user space checks.
 *
 * debugfs layout, under /sys/kernel/debug/wqkit/<experiment>/:
 *   samples  binary array of struct wqkit_sample (capacity entries; slots
 *            never published have WQKIT_SAMPLE_VALID clear)
 *   stats    one line of key=value: state, capacity, produced (samples
 *            offered), dropped (refused: out of range, duplicate, or after
 *            the seal), exported (valid records read), error, tsc_khz, and
 *            buffer, the samples' kernel address, for a host that reads
 *            them from outside the guest once the producers are done
 *   stop     write anything: stop the experiment's producers and wait for
 *            them, so that the counters are final (used after a timeout)
 */
#ifndef _WQKIT_SAMPLES_H
#define _WQKIT_SAMPLES_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/types.h>

#define WQKIT_SAMPLE_VALID	0x1	/* published: every field is written */
#define WQKIT_SAMPLE_CLAIMED	0x2	/* a producer owns the slot and is writing it */

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
	atomic_t writers;	/* producers inside wqkit_recorder_put() */
	bool sealed;		/* set by the first read of samples */
	enum wqkit_state state;
	int error;
	struct dentry *dir;
	/* Stops every producer and returns when none is left; may be NULL. */
	void (*stop)(struct wqkit_recorder *rec);
	struct mutex stop_lock;
	bool stopped;
};

int wqkit_recorder_init(struct wqkit_recorder *rec, const char *name, u32 capacity,
			void (*stop)(struct wqkit_recorder *rec));
void wqkit_recorder_stop(struct wqkit_recorder *rec);
void wqkit_recorder_put(struct wqkit_recorder *rec, const struct wqkit_sample *sample);
void wqkit_recorder_finish(struct wqkit_recorder *rec, int error);
void wqkit_recorder_destroy(struct wqkit_recorder *rec);

#endif /* _WQKIT_SAMPLES_H */
