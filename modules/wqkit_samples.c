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

static ssize_t wqkit_samples_read(struct file *file, char __user *buf,
				  size_t count, loff_t *ppos)
{
	struct wqkit_recorder *rec = file->private_data;
	size_t size = (size_t)rec->capacity * sizeof(struct wqkit_sample);
	loff_t start = *ppos;
	ssize_t ret;

	ret = simple_read_from_buffer(buf, count, ppos, rec->samples, size);
	if (ret > 0) {
		/* Count whole samples whose last byte has just been read. */
		atomic64_add(div_u64(*ppos, sizeof(struct wqkit_sample)) -
			     div_u64(start, sizeof(struct wqkit_sample)),
			     &rec->exported);
	}
	return ret;
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

	seq_printf(m, "state=%s capacity=%u produced=%d dropped=%d exported=%lld error=%d tsc_khz=%u\n",
		   wqkit_state_names[READ_ONCE(rec->state)], rec->capacity,
		   atomic_read(&rec->produced), atomic_read(&rec->dropped),
		   atomic64_read(&rec->exported), READ_ONCE(rec->error), tsc_khz);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(wqkit_stats);

/**
 * wqkit_recorder_init - allocate @capacity slots and publish them in debugfs
 * @rec: the recorder to set up
 * @name: directory under /sys/kernel/debug/wqkit/
 * @capacity: number of samples the experiment will produce
 */
int wqkit_recorder_init(struct wqkit_recorder *rec, const char *name, u32 capacity)
{
	struct dentry *root;

	memset(rec, 0, sizeof(*rec));
	rec->samples = vzalloc(array_size(capacity, sizeof(struct wqkit_sample)));
	if (!rec->samples)
		return -ENOMEM;
	rec->capacity = capacity;
	rec->state = WQKIT_RUNNING;

	root = debugfs_lookup("wqkit", NULL);
	if (!root)
		root = debugfs_create_dir("wqkit", NULL);
	else
		dput(root);
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
	debugfs_create_file("stats", 0444, rec->dir, rec, &wqkit_stats_fops);
	return 0;
}

/**
 * wqkit_recorder_put - store one sample in its slot (sample->seq)
 *
 * Lock-free: each slot has exactly one producer. A slot out of range or
 * already written is counted as dropped, never silently overwritten.
 */
void wqkit_recorder_put(struct wqkit_recorder *rec, const struct wqkit_sample *sample)
{
	struct wqkit_sample *slot;

	if (sample->seq >= rec->capacity) {
		atomic_inc(&rec->dropped);
		return;
	}
	slot = &rec->samples[sample->seq];
	if (slot->flags & WQKIT_SAMPLE_VALID) {
		atomic_inc(&rec->dropped);
		return;
	}
	*slot = *sample;
	slot->flags |= WQKIT_SAMPLE_VALID;
	atomic_inc(&rec->produced);
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
 * wqkit_recorder_destroy - remove the debugfs files and free the samples
 *
 * Removes /sys/kernel/debug/wqkit itself when this was its last experiment.
 */
void wqkit_recorder_destroy(struct wqkit_recorder *rec)
{
	struct dentry *root;

	debugfs_remove_recursive(rec->dir);
	root = debugfs_lookup("wqkit", NULL);
	if (root) {
		if (simple_empty(root))
			debugfs_remove(root);
		dput(root);
	}
	vfree(rec->samples);
	rec->samples = NULL;
}
