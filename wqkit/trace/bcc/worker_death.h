/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What both worker death programs do once a worker is told to die and once it
 * died: DYING pid pool ns, then DEAD pid duration_ns.
 */
#include "wqkit.bpf.h"

WQKIT_HASH(dying, u32, u64);
WQKIT_HISTOGRAM(duration_ns);

static __always_inline void told_to_die(void *ctx, u32 pid, s32 pool)
{
	struct wqkit_event ev = { .kind = EV_DYING, .pid = pid, .pool = pool };

	ev.v[0] = bpf_ktime_get_ns();
	bpf_map_update_elem(&dying, &pid, &ev.v[0], BPF_ANY);
	wqkit_emit(ctx, &ev);
}

static __always_inline void died(void *ctx, u32 pid)
{
	u64 *told = bpf_map_lookup_elem(&dying, &pid);
	struct wqkit_event ev = { .kind = EV_DEAD, .pid = pid };

	if (!told)
		return;
	ev.v[0] = bpf_ktime_get_ns() - *told;
	wqkit_count(&hist_duration_ns, ev.v[0]);
	wqkit_emit(ctx, &ev);
	bpf_map_delete_elem(&dying, &pid);
}
