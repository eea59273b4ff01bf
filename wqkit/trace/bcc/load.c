// SPDX-License-Identifier: GPL-2.0
/*
 * Load one of wqkit's C tracer programs in the traced kernel and print its
 * events as the bpftrace programs print them.
 *
 *   load OBJECT [NAME=VALUE ...]
 *
 * OBJECT is a CO-RE object built on the host (wqkit/trace/compiled.py):
 * libbpf relocates it against this kernel's BTF, so nothing is compiled
 * here. NAME=VALUE sets the program's `const volatile` global NAME (a string
 * or an integer) before loading; MAP_KEYS=N resizes every hash map.
 *
 * Prints "Attaching N probes..." then "ATTACHED" once every program is
 * attached, one line per event, and on SIGINT or SIGTERM the maps named
 * hist_NAME as @NAME log2 histograms in bpftrace's layout, "Lost N events"
 * for perf buffer overflows and "Lost N events (maps full)" for the map
 * named missed.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "events.h"

/* Perf buffer pages per CPU (4 MiB): a TCG guest drains it slowly. */
#define PERF_PAGES 1024
#define POLL_MS 200
#define HIST_SLOTS 64
#define HIST_PREFIX "hist_"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static volatile sig_atomic_t stopping;

static void on_signal(int signum)
{
	stopping = 1;
}

static int print_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, format, args);
}

static void on_event(void *ctx, int cpu, void *data, __u32 size)
{
	const struct wqkit_event *ev = data;
	const unsigned long long *v = (const unsigned long long *)ev->v;

	if (size < sizeof(*ev))
		return;
	switch (ev->kind) {
	case EV_FLOOD:
		printf("FLOOD %llu\n", v[0]);
		break;
	case EV_CREATE:
		printf("CREATE %d %d %llu %llu %llu\n", ev->pid, ev->pool, v[0], v[1], v[2]);
		break;
	case EV_FAILED:
		printf("FAILED %d %llu %llu %llu\n", ev->pool, v[0], v[1], v[2]);
		break;
	case EV_FIRST:
		printf("FIRST %d %llu\n", ev->pid, v[0]);
		break;
	case EV_DYING:
		printf("DYING %d %d %llu\n", ev->pid, ev->pool, v[0]);
		break;
	case EV_DEAD:
		printf("DEAD %d %llu\n", ev->pid, v[0]);
		break;
	case EV_ITEM: {
		/* The kernel's "%ps": "name" or "name [module]"; the name alone, as bpftrace's ksym(). */
		const char *symbol = ev->symbol[0] ? ev->symbol : "[unknown]";

		printf("ITEM %llu %llu %llu %llu %llu %llu %u %d %.*s %.*s\n", v[0], v[1], v[2], v[3], v[4],
		       v[5], ev->cpu, ev->pid, (int)strcspn(symbol, " "), symbol, WQKIT_NAME_LEN, ev->name);
		break;
	}
	case EV_QUEUED:
		printf("QUEUED %llu\n", v[0]);
		break;
	}
}

static void on_lost(void *ctx, int cpu, __u64 count)
{
	printf("Lost %llu events\n", (unsigned long long)count);
}

/* Set the program's const volatile global name to value, in its .rodata before loading. */
static int set_global(struct bpf_object *obj, const char *name, const char *value)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
	const struct btf_var_secinfo *var;
	const struct btf_type *sec, *type;
	size_t size;
	char *data, *end;
	int id, i;

	id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
	/* const in libbpf 1.1, writable until the object is loaded (skeletons write it so) */
	data = rodata ? (char *)bpf_map__initial_value(rodata, &size) : NULL;
	if (id < 0 || !data)
		goto unknown;
	sec = btf__type_by_id(btf, id);
	var = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, var++) {
		if (strcmp(btf__name_by_offset(btf, btf__type_by_id(btf, var->type)->name_off), name))
			continue;
		type = btf__type_by_id(btf, btf__resolve_type(btf, btf__type_by_id(btf, var->type)->type));
		if (btf_is_array(type)) {
			if (strlen(value) >= var->size) {
				fprintf(stderr, "wqkit: error: %s=%s is longer than %u bytes\n", name, value,
					var->size - 1);
				return -EINVAL;
			}
			memset(data + var->offset, 0, var->size);
			memcpy(data + var->offset, value, strlen(value));
			return 0;
		}
		if (btf_is_int(type) && var->size <= sizeof(long long)) {
			long long number = strtoll(value, &end, 0);

			if (*value && !*end) {
				memcpy(data + var->offset, &number, var->size);
				return 0;
			}
		}
		fprintf(stderr, "wqkit: error: %s=%s is not a value of its type\n", name, value);
		return -EINVAL;
	}
unknown:
	fprintf(stderr, "wqkit: error: the program has no parameter %s\n", name);
	return -EINVAL;
}

static int set_parameters(struct bpf_object *obj, int argc, char **argv)
{
	struct bpf_map *map;
	int i, err;

	for (i = 0; i < argc; i++) {
		char *value = strchr(argv[i], '=');

		if (!value) {
			fprintf(stderr, "wqkit: error: %s is not NAME=VALUE\n", argv[i]);
			return -EINVAL;
		}
		*value++ = '\0';
		if (strcmp(argv[i], "MAP_KEYS")) {
			err = set_global(obj, argv[i], value);
			if (err)
				return err;
			continue;
		}
		bpf_object__for_each_map(map, obj) {
			if (bpf_map__type(map) != BPF_MAP_TYPE_HASH)
				continue;
			err = bpf_map__set_max_entries(map, strtoul(value, NULL, 0));
			if (err)
				return err;
		}
	}
	return 0;
}

/* A hist_NAME map as bpftrace prints a log2 histogram: slot k holds [2^(k-1), 2^k), 0 holds 0. */
static void print_histogram(const struct bpf_map *map)
{
	unsigned long long counts[HIST_SLOTS] = { 0 };
	int first = HIST_SLOTS, last = -1, slot, bar;

	for (slot = 0; slot < HIST_SLOTS; slot++) {
		__u32 key = slot;

		if (bpf_map_lookup_elem(bpf_map__fd(map), &key, &counts[slot]) || !counts[slot])
			continue;
		first = first < slot ? first : slot;
		last = slot;
	}
	printf("\n@%s:\n", bpf_map__name(map) + strlen(HIST_PREFIX));
	for (slot = first; slot <= last; slot++) {
		unsigned long long low = slot ? 1ULL << (slot - 1) : 0, high = slot ? 1ULL << slot : 1;

		printf("[%llu, %llu)%16llu |", low, high, counts[slot]);
		for (bar = 0; bar < 52 && (unsigned long long)bar < counts[slot]; bar++)
			putchar('@');
		printf("|\n");
	}
}

static void print_maps(struct bpf_object *obj)
{
	const struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		if (!strncmp(bpf_map__name(map), HIST_PREFIX, strlen(HIST_PREFIX)))
			print_histogram(map);
	}
	map = bpf_object__find_map_by_name(obj, "missed");
	if (map) {
		__u32 key = 0;
		unsigned long long missed = 0;

		if (!bpf_map_lookup_elem(bpf_map__fd(map), &key, &missed) && missed)
			printf("Lost %llu events (maps full)\n", missed);
	}
}

int main(int argc, char **argv)
{
	struct bpf_link *links[64];
	struct perf_buffer *events;
	struct bpf_program *prog;
	struct bpf_object *obj;
	int nr_links = 0, nr_progs = 0, err;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT [NAME=VALUE ...]\n", argv[0]);
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	libbpf_set_print(print_libbpf);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "wqkit: error: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (set_parameters(obj, argc - 2, argv + 2))
		return 2;
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "wqkit: error: loading %s failed: %s\n", argv[1], strerror(-err));
		return 1;
	}
	/* Opened before anything is attached: an event sent with no buffer open is lost unseen. */
	events = perf_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), PERF_PAGES,
				  on_event, on_lost, NULL, NULL);
	if (!events) {
		fprintf(stderr, "wqkit: error: no perf buffer for the events map: %s\n", strerror(errno));
		return 1;
	}
	bpf_object__for_each_program(prog, obj)
		nr_progs++;
	printf("Attaching %d probes...\n", nr_progs);
	fflush(stdout);
	bpf_object__for_each_program(prog, obj) {
		if (nr_links == ARRAY_SIZE(links))
			break;
		links[nr_links] = bpf_program__attach(prog);
		if (!links[nr_links]) {
			fprintf(stderr, "wqkit: error: attaching %s failed: %s\n", bpf_program__section_name(prog),
				strerror(errno));
			return 1;
		}
		nr_links++;
	}
	printf("ATTACHED\n");
	fflush(stdout);
	while (!stopping) {
		err = perf_buffer__poll(events, POLL_MS);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "wqkit: error: polling the events failed: %s\n", strerror(-err));
			break;
		}
		fflush(stdout);
	}
	/*
	 * Detached first, then drained until a poll finds nothing: a handler that was running
	 * when its link went away still counts and sends its event, and what is printed (events,
	 * then maps) must then be all there will be.
	 */
	while (nr_links--)
		bpf_link__destroy(links[nr_links]);
	while (perf_buffer__poll(events, POLL_MS) > 0)
		;
	print_maps(obj);
	fflush(stdout);
	perf_buffer__free(events);
	bpf_object__close(obj);
	return 0;
}
