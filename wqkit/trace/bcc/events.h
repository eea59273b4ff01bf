/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What wqkit's C tracer programs send to their loader (load.c): one record
 * per event, printed by the loader as the bpftrace programs print it.
 * Included by the BPF programs (after vmlinux.h) and by the loader (after
 * <linux/types.h>).
 */
#ifndef WQKIT_EVENTS_H
#define WQKIT_EVENTS_H

enum wqkit_event_kind {
	EV_FLOOD = 1,	/* v[0]: ns of the flood's first queue_work */
	EV_CREATE,	/* pid, pool, v[0]: create_worker() duration, v[1]: its start ns, v[2]: caller */
	EV_FAILED,	/* pool, v[0], v[1], v[2]: the same, for a create_worker() that failed */
	EV_FIRST,	/* pid, v[0]: ns of a new worker's first work item */
	EV_DYING,	/* pid, pool, v[0]: ns the worker was told to die */
	EV_DEAD,	/* pid, v[0]: told to die -> task exit */
	EV_ITEM,	/* v: work, function, queue, activate, start, end ns; cpu, pid, name, symbol */
	EV_QUEUED,	/* v[0]: ns a flood item was queued */
};

/* The longest workqueue name the programs keep (WQ_NAME_LEN is 32 since 6.9, 24 before). */
#define WQKIT_NAME_LEN 32
/* The longest work function symbol kept, with its " [module]" (KSYM_NAME_LEN is 512). */
#define WQKIT_SYMBOL_LEN 96

struct wqkit_event {
	__u64 v[6];
	__u32 kind;
	__s32 pid;
	__s32 pool;
	__u32 cpu;
	char name[WQKIT_NAME_LEN];
	/*
	 * EV_ITEM: the work function's symbol, resolved by the kernel when the item
	 * ended (bpf_snprintf's "%ps"), while its module is surely loaded: the loader
	 * may print it after the module is gone, when /proc/kallsyms no longer has it.
	 */
	char symbol[WQKIT_SYMBOL_LEN];
};

#endif
