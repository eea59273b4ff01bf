// SPDX-License-Identifier: GPL-2.0
/*
 * wqkit_samples - see wqkit_samples.h. Linked into every experiment module.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <asm/tsc.h>

#include "wqkit_samples.h"

static const char * const wqkit_state_names[] = {
	[WQKIT_RUNNING] = "running",
	[WQKIT_DONE] = "done",
	[WQKIT_FAILED] = "failed",
};

/* Records copied per step of a read: 4 KiB of kernel buffer. */
#define WQKIT_READ_CHUNK	128

/*
 * From now on refuse new samples, then wait for the producers already inside
 * wqkit_recorder_put(): afterwards no slot changes any more.
 */
static void wqkit_recorder_seal(struct wqkit_recorder *rec)
{
	WRITE_ONCE(rec->sealed, true);
	/* Pairs with smp_mb__after_atomic() in wqkit_recorder_put(). */
	smp_mb();
	while (atomic_read(&rec->writers))
		cond_resched();
}

/*
 * Copy whole records only. Each slot's flags are loaded with acquire
 * semantics before its fields, so a record is exported complete (VALID) or
 * as an empty slot, never half-written.
 */
static ssize_t wqkit_samples_read(struct file *file, char __user *buf,
				  size_t count, loff_t *ppos)
{
	struct wqkit_recorder *rec = file->private_data;
	const size_t rsize = sizeof(struct wqkit_sample);
	loff_t size = (loff_t)rec->capacity * rsize;
	struct wqkit_sample *chunk;
	size_t done = 0;
	ssize_t ret = 0;

	if (*ppos >= size)
		return 0;
	if (*ppos % rsize || count < rsize)
		return -EINVAL;
	count = min_t(loff_t, count, size - *ppos) / rsize * rsize;
	wqkit_recorder_seal(rec);
	chunk = kmalloc_array(WQKIT_READ_CHUNK, rsize, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	while (done < count) {
		u32 first = div_u64(*ppos + done, rsize);
		u32 n = min_t(size_t, WQKIT_READ_CHUNK, (count - done) / rsize);
		u32 i, valid = 0;

		for (i = 0; i < n; i++) {
			struct wqkit_sample *slot = &rec->samples[first + i];

			/* Pairs with smp_store_release() in wqkit_recorder_put(). */
			if (smp_load_acquire(&slot->flags) & WQKIT_SAMPLE_VALID) {
				chunk[i] = *slot;
				valid++;
			} else {
				memset(&chunk[i], 0, rsize);
			}
		}
		if (copy_to_user(buf + done, chunk, n * rsize)) {
			ret = -EFAULT;
			break;
		}
		atomic64_add(valid, &rec->exported);
		done += n * rsize;
	}
	kfree(chunk);
	*ppos += done;
	return done ? done : ret;
}

static const struct file_operations wqkit_samples_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = wqkit_samples_read,
	.llseek = default_llseek,
};

static int wqkit_stats_show(struct seq_file *m, void *unused)
{
	struct wqkit_recorder *rec = m->private;

	/*
	 * buffer is the samples' kernel address: the host may read them from
	 * outside (QMP) once the producers are done. Root-only, lab use.
	 */
	seq_printf(m, "state=%s capacity=%u produced=%d dropped=%d exported=%lld error=%d tsc_khz=%u buffer=%px\n",
		   wqkit_state_names[READ_ONCE(rec->state)], rec->capacity,
		   atomic_read(&rec->produced), atomic_read(&rec->dropped),
		   atomic64_read(&rec->exported), READ_ONCE(rec->error), tsc_khz, rec->samples);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(wqkit_stats);

static ssize_t wqkit_stop_write(struct file *file, const char __user *buf,
				size_t count, loff_t *ppos)
{
	wqkit_recorder_stop(file->private_data);
	return count;
}

static const struct file_operations wqkit_stop_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = wqkit_stop_write,
	.llseek = noop_llseek,
};

/*
 * /sys/kernel/debug/wqkit, made by the first module that needs it and never
 * removed: each module links its own copy of this file, so no lock can
 * serialise "empty? then remove" in one module against "create a directory
 * inside" in another. An empty directory is all that stays.
 */
static struct dentry *wqkit_debugfs_root(void)
{
	struct dentry *root = debugfs_lookup("wqkit", NULL);

	if (root) {
		dput(root);	/* debugfs keeps it: it is never removed */
		return root;
	}
	root = debugfs_create_dir("wqkit", NULL);
	if (root != ERR_PTR(-EEXIST))
		return root;
	/* Another module made it between the lookup and the creation. */
	root = debugfs_lookup("wqkit", NULL);
	if (!root)
		return ERR_PTR(-ENOENT);
	dput(root);
	return root;
}

/**
 * wqkit_recorder_init - allocate @capacity slots and publish them in debugfs
 * @rec: the recorder to set up
 * @name: directory under /sys/kernel/debug/wqkit/
 * @capacity: number of samples the experiment will produce
 * @stop: stops every producer and returns when none is left (NULL: nothing to stop)
 */
int wqkit_recorder_init(struct wqkit_recorder *rec, const char *name, u32 capacity,
			void (*stop)(struct wqkit_recorder *rec))
{
	struct dentry *root;

	memset(rec, 0, sizeof(*rec));
	mutex_init(&rec->stop_lock);
	rec->stop = stop;
	rec->samples = vzalloc(array_size(capacity, sizeof(struct wqkit_sample)));
	if (!rec->samples)
		return -ENOMEM;
	rec->capacity = capacity;
	rec->state = WQKIT_RUNNING;

	root = wqkit_debugfs_root();
	if (IS_ERR(root)) {
		vfree(rec->samples);
		return PTR_ERR(root);
	}
	rec->dir = debugfs_create_dir(name, root);
	if (IS_ERR(rec->dir)) {
		vfree(rec->samples);
		return PTR_ERR(rec->dir);
	}
	debugfs_create_file("samples", 0400, rec->dir, rec, &wqkit_samples_fops);
	debugfs_create_file("stats", 0400, rec->dir, rec, &wqkit_stats_fops);
	debugfs_create_file("stop", 0200, rec->dir, rec, &wqkit_stop_fops);
	return 0;
}

/**
 * wqkit_recorder_put - store one sample in its slot (sample->seq)
 *
 * Lock-free. The slot is claimed with cmpxchg, so a slot out of range or
 * already claimed, or a sample offered after the recorder was sealed, is
 * counted as dropped and never overwrites anything. The record is published
 * by a release store of its flags (see the header).
 */
void wqkit_recorder_put(struct wqkit_recorder *rec, const struct wqkit_sample *sample)
{
	struct wqkit_sample *slot;

	preempt_disable();
	atomic_inc(&rec->writers);
	/* Pairs with smp_mb() in wqkit_recorder_seal(). */
	smp_mb__after_atomic();
	atomic_inc(&rec->produced);
	if (READ_ONCE(rec->sealed) || sample->seq >= rec->capacity)
		goto drop;
	slot = &rec->samples[sample->seq];
	if (cmpxchg(&slot->flags, 0, WQKIT_SAMPLE_CLAIMED) != 0)
		goto drop;
	slot->t0 = sample->t0;
	slot->t1 = sample->t1;
	slot->seq = sample->seq;
	slot->pid = sample->pid;
	slot->cpu_queue = sample->cpu_queue;
	slot->cpu_exec = sample->cpu_exec;
	/* Every field above is visible before VALID (reader: smp_load_acquire). */
	smp_store_release(&slot->flags, WQKIT_SAMPLE_VALID);
	goto out;
drop:
	atomic_inc(&rec->dropped);
out:
	/* The slot's stores are done before the seal's wait can see us leave. */
	smp_mb__before_atomic();
	atomic_dec(&rec->writers);
	preempt_enable();
}

/**
 * wqkit_recorder_stop - stop the experiment's producers once; afterwards the
 * counters are final. Called by the stop file and before unloading.
 */
void wqkit_recorder_stop(struct wqkit_recorder *rec)
{
	mutex_lock(&rec->stop_lock);
	if (!rec->stopped && rec->stop)
		rec->stop(rec);
	rec->stopped = true;
	mutex_unlock(&rec->stop_lock);
}

/**
 * wqkit_recorder_finish - mark the experiment done (@error == 0) or failed
 */
void wqkit_recorder_finish(struct wqkit_recorder *rec, int error)
{
	WRITE_ONCE(rec->error, error);
	/* Pairs with READ_ONCE in stats: samples are complete before "done". */
	smp_wmb();
	WRITE_ONCE(rec->state, error ? WQKIT_FAILED : WQKIT_DONE);
}

/**
 * wqkit_recorder_destroy - remove this recorder's debugfs files and free the samples
 *
 * /sys/kernel/debug/wqkit itself stays (see wqkit_debugfs_root()).
 */
void wqkit_recorder_destroy(struct wqkit_recorder *rec)
{
	debugfs_remove_recursive(rec->dir);
	vfree(rec->samples);
	rec->samples = NULL;
}
