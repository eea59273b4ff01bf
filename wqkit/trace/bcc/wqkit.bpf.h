/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every wqkit C tracer program shares: the kernel's types (vmlinux.h,
 * dumped from the target kernel's BTF on the host), libbpf's helpers, the
 * event record, its output map and log2 histograms in BCC's layout.
 *
 * Conventions the loader (load.c) relies on:
 * - parameters are `const volatile` globals, set by name before loading;
 * - every hash map is resized to the loader's MAP_KEYS;
 * - a map named hist_NAME is a log2 histogram, printed as @NAME at the end;
 * - a map named missed counts updates that did not fit ("Lost N events (maps full)").
 */
#ifndef WQKIT_BPF_H
#define WQKIT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

char LICENSE[] SEC("license") = "GPL";

/* Keys of a hash map before the loader resizes it (BCC's default). */
#define WQKIT_MAP_KEYS 10240

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

#define WQKIT_HASH(name, key_type, value_type)				\
	struct {							\
		__uint(type, BPF_MAP_TYPE_HASH);			\
		__uint(max_entries, WQKIT_MAP_KEYS);			\
		__type(key, key_type);					\
		__type(value, value_type);				\
	} name SEC(".maps")

#define WQKIT_HISTOGRAM(name)						\
	struct {							\
		__uint(type, BPF_MAP_TYPE_ARRAY);			\
		__uint(max_entries, 64);				\
		__type(key, u32);					\
		__type(value, u64);					\
	} hist_##name SEC(".maps")

/* floor(log2(v)) + 1, 0 for 0: slot k holds [2^(k-1), 2^k), as BCC's bpf_log2l. */
static __always_inline u32 wqkit_slot(u64 v)
{
	u32 slot = 0;

	/* A binary search over the bit position: BPF has no count-leading-zeros instruction. */
	for (u32 shift = 32; shift; shift >>= 1) {
		if (v >> shift) {
			v >>= shift;
			slot += shift;
		}
	}
	return v ? slot + 1 : 0;
}

static __always_inline void wqkit_count(void *histogram, u64 value)
{
	u32 slot = wqkit_slot(value);
	u64 *count = bpf_map_lookup_elem(histogram, &slot);

	if (count)
		__sync_fetch_and_add(count, 1);
}

static __always_inline void wqkit_emit(void *ctx, struct wqkit_event *ev)
{
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ev, sizeof(*ev));
}

/* Whether the NUL-terminated names a and b (WQKIT_NAME_LEN bytes each) are equal. */
static __always_inline bool wqkit_same_name(const char *a, const volatile char *b)
{
	for (int i = 0; i < WQKIT_NAME_LEN; i++) {
		if (a[i] != b[i])
			return false;
		if (!a[i])
			return true;
	}
	return true;
}

/* A tracepoint's __data_loc string field: its offset in the record is the low 16 bits. */
#define WQKIT_READ_DATA_LOC(dst, ctx, field)				\
	bpf_probe_read_kernel_str(dst, sizeof(dst),			\
				  (void *)(ctx) + ((ctx)->__data_loc_##field & 0xffff))

#endif
