// SPDX-License-Identifier: GPL-2.0
/*
 * wq_kserver - run a graph of dependent tasks on a workqueue, like a
 * server's request processing: a task starts only when every task it
 * depends on has finished, and every task is a work item.
 *
 * Load the module with the workqueue's configuration, write the graph to
 * /sys/kernel/debug/wqkit_kserver/graph (in as many writes as it takes:
 * each open for writing starts a new text), one
 * declaration per line:
 *
 *	task ID KIND VALUE	KIND busy (loop iterations), sleep (us) or
 *				mem (KiB written into a buffer of the task's
 *				own)
 *	edge FROM TO		task FROM must finish before task TO starts
 *
 * within the [limits] of kserver.toml (ids, costs, edges, text, samples);
 * then write 1 to /sys/kernel/debug/wqkit_kserver/run. The graph is then
 * checked completely (ids, costs, edge ends, duplicates, cycles, size): a
 * problem is one pr_err line and -EINVAL from that write, and nothing stays
 * allocated. Writing 1 to "trial" instead checks the graph, runs it once
 * unrecorded on a workqueue of its own and checks that every task ran after
 * its predecessors had finished (-EIO and a pr_err if not); nothing stays
 * allocated, so wqkit's fuzzer tries thousands of texts in one load that way.
 * After a trial that succeeded, "parsed" reads back what the module made of
 * the text: "tasks N edges E samples S", then one line per task in the order
 * it was declared, "ID KIND VALUE" and its successors' ids, so that the
 * fuzzer compares every accepted graph with its own parse. Setting
 * "fault_early_start" (a fault for tests) makes a trial queue a task when
 * its first predecessor finishes: the order check must then fail.
 *
 * A valid graph then runs @repeat times. Each finishing task queues the
 * successors whose predecessors are all done (an atomic count per task, so
 * exactly once); once the experiment is being stopped (an unload, a write to
 * its "stop"), a finishing task queues nothing more. Per task and repetition
 * two samples are recorded (wqkit_samples): seq 2k = (ready, start) and
 * seq 2k+1 = (start, end), k = repetition * tasks + task index, with the CPU
 * that made the task ready, the CPU and worker that ran it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kstrtox.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <asm/msr.h>

#include "wqkit_experiment.h"
#include "kserver_params.h"

/* The graph's limits: [limits] of kserver.toml, through kserver_params.h. */
#define MAX_TASKS	WQKIT_LIMIT_MAX_TASKS
#define MAX_EDGES	WQKIT_LIMIT_MAX_EDGES
#define MAX_TEXT	WQKIT_LIMIT_MAX_TEXT
#define MAX_SAMPLES	WQKIT_LIMIT_MAX_SAMPLES
#define MAX_MEM_KIB	WQKIT_LIMIT_MAX_MEM_KIB

enum kserver_kind { KIND_BUSY, KIND_SLEEP, KIND_MEM };

static const struct {
	const char *name;
	u64 max;
} kinds[] = {
	[KIND_BUSY] = { "busy", WQKIT_LIMIT_MAX_BUSY },
	[KIND_SLEEP] = { "sleep", WQKIT_LIMIT_MAX_SLEEP },
	[KIND_MEM] = { "mem", WQKIT_LIMIT_MAX_MEM },
};

struct kserver_task {
	struct work_struct work;
	u32 index;
	u32 id;
	enum kserver_kind kind;
	u64 value;
	u32 npred;
	u32 first_succ;		/* into succ[] */
	u32 nsucc;
	atomic_t remaining;
	u64 ready;		/* TSC when its last predecessor finished */
	u64 start, end;		/* TSC around its cost, in its last run */
	u16 ready_cpu;
	size_t mem_offset;	/* mem: its own region of graph.membuf */
};

struct kserver_graph {
	struct kserver_task *tasks;
	u32 ntasks;
	u32 *succ;		/* successor indexes, grouped by task */
	u8 *membuf;
	size_t membuf_size;
};

static struct kserver_graph graph;
static struct wqkit_experiment xp;
static bool started;
static DEFINE_MUTEX(graph_lock);
static struct dentry *graph_dir;
static char *graph_text;	/* what was written to "graph" since it was opened */
static size_t graph_len;
static int cpu_list[WQKIT_CPUS_MAX];
static unsigned int ncpus;
static unsigned int cur_rep;
static atomic_t done_in_rep;
static DECLARE_COMPLETION(rep_done);

/* Trials: a graph run once, unrecorded, while the experiment is not started. */
static struct {
	struct workqueue_struct *wq;	/* allocated by the first trial */
	bool running;
	bool stopping;			/* interrupted: finishing tasks queue no more */
	bool fault_early_start;		/* a fault for tests: queue on the first predecessor */
	char *parsed;			/* the last trial's graph as the module parsed it */
	size_t parsed_len;
} trial;

static void kserver_queue(struct kserver_task *t)
{
	int cpu = ncpus ? cpu_list[t->index % ncpus] : WORK_CPU_UNBOUND;

	queue_work_on(cpu, trial.running ? trial.wq : xp.wq, &t->work);
}

/* Whether finishing tasks must queue nothing more: the run is being stopped. */
static bool kserver_stopping(void)
{
	return trial.running ? READ_ONCE(trial.stopping) : wqkit_experiment_stopping(&xp);
}

static void kserver_cost(struct kserver_task *t)
{
	u64 i;

	switch (t->kind) {
	case KIND_BUSY:
		for (i = 0; i < t->value; i++) {
			cpu_relax();
			if (!(i & 0xfffff))
				cond_resched();
		}
		break;
	case KIND_SLEEP:
		if (t->value >= 10)
			usleep_range(t->value, t->value + t->value / 8 + 1);
		else
			udelay(t->value);
		break;
	case KIND_MEM:
		memset(graph.membuf + t->mem_offset, (int)t->index, t->value * 1024);
		break;
	}
}

static void kserver_record(u32 seq, u64 t0, u64 t1, u16 cpu_queue)
{
	struct wqkit_sample sample = {
		.t0 = t0, .t1 = t1, .seq = seq, .pid = current->pid,
		.cpu_queue = cpu_queue, .cpu_exec = raw_smp_processor_id(),
	};

	wqkit_recorder_put(&xp.rec, &sample);
}

static void kserver_work_fn(struct work_struct *work)
{
	struct kserver_task *t = container_of(work, struct kserver_task, work);
	u32 k = READ_ONCE(cur_rep) * graph.ntasks + t->index;
	u64 start = rdtsc_ordered(), end;
	u32 i;

	kserver_cost(t);
	end = rdtsc_ordered();
	t->start = start;
	t->end = end;
	if (!trial.running) {
		kserver_record(2 * k, t->ready, start, t->ready_cpu);
		kserver_record(2 * k + 1, start, end, t->ready_cpu);
	}
	for (i = 0; i < t->nsucc && !kserver_stopping(); i++) {
		struct kserver_task *s = &graph.tasks[graph.succ[t->first_succ + i]];

		/*
		 * The last predecessor to finish makes it ready, exactly once (or,
		 * with the trial's fault, the first one).
		 */
		if (trial.running && READ_ONCE(trial.fault_early_start) ?
		    atomic_dec_return(&s->remaining) == s->npred - 1 :
		    atomic_dec_and_test(&s->remaining)) {
			s->ready = rdtsc_ordered();
			s->ready_cpu = raw_smp_processor_id();
			kserver_queue(s);
		}
	}
	if (atomic_inc_return(&done_in_rep) == graph.ntasks)
		complete(&rep_done);
}

/* Start repetition @rep: every task waits for all its predecessors, the roots are queued. */
static void kserver_start_rep(unsigned int rep)
{
	u64 now;
	u32 i;

	WRITE_ONCE(cur_rep, rep);
	atomic_set(&done_in_rep, 0);
	reinit_completion(&rep_done);
	for (i = 0; i < graph.ntasks; i++)
		atomic_set(&graph.tasks[i].remaining, graph.tasks[i].npred);
	now = rdtsc_ordered();
	for (i = 0; i < graph.ntasks; i++) {
		struct kserver_task *t = &graph.tasks[i];

		if (!t->npred) {
			t->ready = now;
			t->ready_cpu = raw_smp_processor_id();
			kserver_queue(t);
		}
	}
}

static int kserver_run(void *unused)
{
	unsigned int rep;

	for (rep = 0; rep < repeat && !kthread_should_stop(); rep++) {
		kserver_start_rep(rep);
		while (!wait_for_completion_timeout(&rep_done, HZ)) {
			if (kthread_should_stop())
				goto out;
		}
	}
out:
	flush_workqueue(xp.wq);
	wqkit_recorder_finish(&xp.rec, rep == repeat ? 0 : -EINTR);
	return 0;
}

static void kserver_free(void)
{
	kvfree(graph.tasks);
	kvfree(graph.succ);
	vfree(graph.membuf);
	memset(&graph, 0, sizeof(graph));
}

static int cmp_edge(const void *a, const void *b)
{
	const u64 *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* Kahn's algorithm: 0 when every task can be ordered, else -EINVAL naming a task on a cycle. */
static int kserver_check_acyclic(u32 *indeg, u32 *queue)
{
	u32 head = 0, tail = 0, i, j;

	for (i = 0; i < graph.ntasks; i++) {
		indeg[i] = graph.tasks[i].npred;
		if (!indeg[i])
			queue[tail++] = i;
	}
	while (head < tail) {
		struct kserver_task *t = &graph.tasks[queue[head++]];

		for (j = 0; j < t->nsucc; j++) {
			u32 s = graph.succ[t->first_succ + j];

			if (!--indeg[s])
				queue[tail++] = s;
		}
	}
	if (tail == graph.ntasks)
		return 0;
	for (i = 0; i < graph.ntasks && !indeg[i]; i++)
		;
	pr_err("graph: cycle through task %u\n", graph.tasks[i].id);
	return -EINVAL;
}

/* What separates the words of a graph line (ASCII only: the kernel's isspace() takes 0xa0 too). */
#define WORD_SEPARATORS	" \t\r\v\f"
#define MAX_WORDS	4

/* Split @line into at most MAX_WORDS words; MAX_WORDS + 1 when it has more. */
static unsigned int kserver_words(char *line, char **words)
{
	unsigned int n = 0;
	char *word;

	while ((word = strsep(&line, WORD_SEPARATORS))) {
		if (!*word)
			continue;
		if (n == MAX_WORDS)
			return MAX_WORDS + 1;
		words[n++] = word;
	}
	return n;
}

/* @word as a decimal number of ASCII digits only (no sign, no space) that is at most @max. */
static bool kserver_number(const char *word, u64 max, u64 *value)
{
	const char *c;

	for (c = word; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	return !kstrtou64(word, 10, value) && *value <= max;
}

/*
 * Parse and check @text (@len bytes) completely, filling @graph. On any
 * problem: one pr_err line, -EINVAL, and nothing left allocated. A line is
 * "task ID KIND VALUE" or "edge FROM TO": words separated by blanks,
 * numbers in ASCII decimal digits, "#" to the end of the line a comment.
 */
static int kserver_load(char *text, size_t len)
{
	u64 *edges = NULL;
	u32 nedges = 0, line_no = 0, i, *indeg = NULL, *queue = NULL;
	s32 *index_of;
	size_t mem_total = 0;
	char *line, *nul = memchr(text, '\0', len);
	int ret = -EINVAL;

	if (nul) {
		pr_err("graph: a NUL byte at offset %zu\n", nul - text);
		return -EINVAL;
	}
	text[len] = '\0';
	index_of = kvmalloc_array(MAX_TASKS, sizeof(*index_of), GFP_KERNEL);
	edges = kvmalloc_array(MAX_EDGES, sizeof(*edges), GFP_KERNEL);
	graph.tasks = kvcalloc(MAX_TASKS, sizeof(*graph.tasks), GFP_KERNEL);
	if (!index_of || !edges || !graph.tasks) {
		ret = -ENOMEM;
		goto out;
	}
	memset(index_of, 0xff, MAX_TASKS * sizeof(*index_of));
	while ((line = strsep(&text, "\n"))) {
		char *words[MAX_WORDS], *hash = strchr(line, '#');
		u64 id, from, to, value;
		unsigned int n;
		int k;

		line_no++;
		if (hash)
			*hash = '\0';
		n = kserver_words(line, words);
		if (!n)
			continue;
		if (n == 4 && !strcmp(words[0], "task")) {
			if (!kserver_number(words[1], MAX_TASKS - 1, &id)) {
				pr_err("graph line %u: task id '%.24s' is not a number in 0..%u\n",
				       line_no, words[1], MAX_TASKS - 1);
				goto out;
			}
			if (index_of[id] >= 0) {
				pr_err("graph line %u: task %llu is declared twice\n", line_no, id);
				goto out;
			}
			for (k = 0; k < ARRAY_SIZE(kinds) && strcmp(words[2], kinds[k].name); k++)
				;
			if (k == ARRAY_SIZE(kinds)) {
				pr_err("graph line %u: unknown cost kind '%.24s'\n", line_no, words[2]);
				goto out;
			}
			if (!kserver_number(words[3], kinds[k].max, &value)) {
				pr_err("graph line %u: task %llu: %s '%.24s' is not a number in 0..%llu\n",
				       line_no, id, kinds[k].name, words[3], kinds[k].max);
				goto out;
			}
			index_of[id] = graph.ntasks;
			graph.tasks[graph.ntasks] = (struct kserver_task) {
				.index = graph.ntasks, .id = id, .kind = k, .value = value,
				.mem_offset = mem_total,
			};
			if (k == KIND_MEM)
				mem_total += value * 1024;
			if (mem_total > (size_t)MAX_MEM_KIB * 1024) {
				pr_err("graph line %u: mem tasks write more than %u KiB in all\n",
				       line_no, MAX_MEM_KIB);
				goto out;
			}
			graph.ntasks++;
		} else if (n == 3 && !strcmp(words[0], "edge")) {
			if (nedges == MAX_EDGES) {
				pr_err("graph line %u: more than %u edges\n", line_no, MAX_EDGES);
				goto out;
			}
			if (!kserver_number(words[1], MAX_TASKS - 1, &from) ||
			    !kserver_number(words[2], MAX_TASKS - 1, &to)) {
				pr_err("graph line %u: edge '%.24s' -> '%.24s': not task ids in 0..%u\n",
				       line_no, words[1], words[2], MAX_TASKS - 1);
				goto out;
			}
			if (from == to) {
				pr_err("graph line %u: edge %llu -> %llu: a task cannot wait for itself\n",
				       line_no, from, to);
				goto out;
			}
			edges[nedges++] = from << 32 | to;
		} else {
			pr_err("graph line %u: not 'task ID KIND VALUE' or 'edge FROM TO'\n", line_no);
			goto out;
		}
	}
	if (!graph.ntasks) {
		pr_err("graph: no task\n");
		goto out;
	}
	/* Edges by source, checked for missing ends and duplicates, as successor lists. */
	sort(edges, nedges, sizeof(*edges), cmp_edge, NULL);
	for (i = 0; i < nedges; i++) {
		u32 from = edges[i] >> 32, to = (u32)edges[i];

		if (index_of[from] < 0 || index_of[to] < 0) {
			pr_err("graph: edge %u -> %u: no task %u\n", from, to, index_of[from] < 0 ? from : to);
			goto out;
		}
		if (i && edges[i] == edges[i - 1]) {
			pr_err("graph: edge %u -> %u is given twice\n", from, to);
			goto out;
		}
	}
	graph.succ = kvmalloc_array(max_t(u32, nedges, 1), sizeof(*graph.succ), GFP_KERNEL);
	indeg = kvmalloc_array(graph.ntasks, sizeof(*indeg), GFP_KERNEL);
	queue = kvmalloc_array(graph.ntasks, sizeof(*queue), GFP_KERNEL);
	if (!graph.succ || !indeg || !queue) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nedges; i++) {
		struct kserver_task *from = &graph.tasks[index_of[edges[i] >> 32]];

		if (!from->nsucc)
			from->first_succ = i;
		from->nsucc++;
		graph.succ[i] = index_of[(u32)edges[i]];
		graph.tasks[graph.succ[i]].npred++;
	}
	ret = kserver_check_acyclic(indeg, queue);
	if (ret)
		goto out;
	if (mem_total) {
		graph.membuf = vmalloc(mem_total);
		if (!graph.membuf) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < graph.ntasks; i++)
		INIT_WORK(&graph.tasks[i].work, kserver_work_fn);
out:
	kvfree(index_of);
	kvfree(edges);
	kvfree(indeg);
	kvfree(queue);
	if (ret)
		kserver_free();
	return ret;
}

/* The samples the graph makes, run @repeat times, within the recorder's limit. */
static int kserver_check_samples(void)
{
	if ((u64)2 * graph.ntasks * repeat > MAX_SAMPLES) {
		pr_err("graph: %u tasks x repeat=%u make more than %u samples\n",
		       graph.ntasks, repeat, MAX_SAMPLES);
		return -EINVAL;
	}
	return 0;
}

/*
 * Run the loaded graph once, unrecorded, and check that every task started
 * after each of its predecessors had finished (a task that never ran has a
 * start of 0). A fatal signal stops it: finishing tasks queue nothing more.
 */
static int kserver_trial(void)
{
	const struct kserver_task *t, *s;
	int ret = 0;
	u32 i, j;

	if (!trial.wq) {
		trial.wq = wqkit_alloc_workqueue("kserver_trial", wq_flags, max_active, false);
		if (!trial.wq)
			return -ENOMEM;
	}
	trial.stopping = false;
	trial.running = true;
	kserver_start_rep(0);
	if (wait_for_completion_killable(&rep_done)) {
		WRITE_ONCE(trial.stopping, true);
		ret = -EINTR;
	}
	flush_workqueue(trial.wq);	/* the last task may still be returning */
	trial.running = false;
	for (i = 0; i < graph.ntasks && !ret; i++) {
		t = &graph.tasks[i];
		for (j = 0; j < t->nsucc && !ret; j++) {
			s = &graph.tasks[graph.succ[t->first_succ + j]];
			if (s->start < t->end) {
				pr_err("trial: task %u started before task %u had finished\n",
				       s->id, t->id);
				ret = -EIO;
			}
		}
	}
	return ret;
}

/* The loaded graph as "parsed" reads it back (see the top of this file). */
static int kserver_describe(void)
{
	const struct kserver_task *t;
	size_t size, len;
	u32 i, j, nedges = 0;

	for (i = 0; i < graph.ntasks; i++)
		nedges += graph.tasks[i].nsucc;
	/* ids and counts fit in 10 digits, a cost in 20, a kind in 5 */
	size = 64 + (size_t)graph.ntasks * (10 + 1 + 5 + 1 + 20 + 1) + (size_t)nedges * 11 + 1;
	kvfree(trial.parsed);
	trial.parsed_len = 0;
	trial.parsed = kvmalloc(size, GFP_KERNEL);
	if (!trial.parsed)
		return -ENOMEM;
	len = scnprintf(trial.parsed, size, "tasks %u edges %u samples %llu\n", graph.ntasks, nedges,
			(u64)2 * graph.ntasks * repeat);
	for (i = 0; i < graph.ntasks; i++) {
		t = &graph.tasks[i];
		len += scnprintf(trial.parsed + len, size - len, "%u %s %llu", t->id, kinds[t->kind].name,
				 t->value);
		for (j = 0; j < t->nsucc; j++)
			len += scnprintf(trial.parsed + len, size - len, " %u",
					 graph.tasks[graph.succ[t->first_succ + j]].id);
		len += scnprintf(trial.parsed + len, size - len, "\n");
	}
	trial.parsed_len = len;
	return 0;
}

static int kserver_start(void)
{
	const struct wqkit_experiment_desc desc = {
		.name = "kserver",
		.nr = 2 * graph.ntasks * repeat,
		.item_size = 1,
		.wq_flags = wq_flags,
		.max_active = max_active,
		.cpu = -1,
		.run = kserver_run,
	};
	int ret;

	nr_samples = desc.nr;
	ret = wqkit_experiment_start(&xp, &desc);
	if (ret)
		return ret;
	started = true;
	pr_info("started: %u tasks, repeat=%u wq_flags=0x%x max_active=%d cpus=%s\n",
		graph.ntasks, repeat, wq_flags, max_active, *cpus ? cpus : "any");
	return 0;
}

/* Opening "graph" for writing starts a new text. */
static int kserver_graph_open(struct inode *inode, struct file *file)
{
	mutex_lock(&graph_lock);
	graph_len = 0;
	mutex_unlock(&graph_lock);
	return 0;
}

/* Each write appends where the previous one ended (a pipe's chunks, in order). */
static ssize_t kserver_graph_write(struct file *file, const char __user *buf,
				   size_t count, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&graph_lock);
	if (started) {
		pr_err("graph: already running; unload the module to run another\n");
		ret = -EBUSY;
	} else if (*ppos != graph_len || count > MAX_TEXT - graph_len) {
		pr_err("graph: write it in order, at most %u bytes\n", MAX_TEXT);
		ret = -EINVAL;
	} else {
		ret = simple_write_to_buffer(graph_text, MAX_TEXT, ppos, buf, count);
		if (ret > 0)
			graph_len = *ppos;
	}
	mutex_unlock(&graph_lock);
	return ret;
}

/*
 * Writing 1 to "run" checks the graph written so far and starts it; writing 1
 * to "trial" checks it and runs it once (kserver_trial(); nothing is kept, so
 * many graphs can be tried in one load). Either way the text is used up.
 */
static ssize_t kserver_command(const char __user *buf, size_t count, bool run)
{
	const char *name = run ? "run" : "trial";
	bool go;
	int ret = kstrtobool_from_user(buf, count, &go);

	if (ret || !go) {
		pr_err("%s: write 1 to %s the graph written to graph\n", name, name);
		return -EINVAL;
	}
	mutex_lock(&graph_lock);
	if (started) {
		pr_err("graph: already running; unload the module to run another\n");
		ret = -EBUSY;
	} else {
		trial.parsed_len = 0;
		ret = kserver_load(graph_text, graph_len) ?: kserver_check_samples();
		if (!ret)
			ret = run ? kserver_start() : kserver_trial() ?: kserver_describe();
		if (ret || !run)
			kserver_free();
		graph_len = 0;	/* parsing cut the text up: write the graph again */
	}
	mutex_unlock(&graph_lock);
	return ret ?: count;
}

static ssize_t kserver_run_write(struct file *file, const char __user *buf,
				 size_t count, loff_t *ppos)
{
	return kserver_command(buf, count, true);
}

static ssize_t kserver_trial_write(struct file *file, const char __user *buf,
				   size_t count, loff_t *ppos)
{
	return kserver_command(buf, count, false);
}

/* "parsed": the graph of the last trial that succeeded, as the module parsed it. */
static ssize_t kserver_parsed_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&graph_lock);
	ret = simple_read_from_buffer(buf, count, ppos, trial.parsed, trial.parsed_len);
	mutex_unlock(&graph_lock);
	return ret;
}

static const struct file_operations kserver_parsed_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = kserver_parsed_read,
	.llseek = default_llseek,
};

static const struct file_operations kserver_graph_fops = {
	.owner = THIS_MODULE,
	.open = kserver_graph_open,
	.write = kserver_graph_write,
	.llseek = noop_llseek,
};

static const struct file_operations kserver_run_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kserver_run_write,
	.llseek = noop_llseek,
};

static const struct file_operations kserver_trial_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kserver_trial_write,
	.llseek = noop_llseek,
};

/* "0,1,3" to cpu_list; empty means any CPU. */
static int kserver_parse_cpus(void)
{
	char *list, *item, *cursor;
	unsigned int cpu;
	int ret = 0;

	if (!*cpus)
		return 0;
	list = kstrdup(cpus, GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	cursor = list;
	while ((item = strsep(&cursor, ","))) {
		if (kstrtouint(item, 10, &cpu) || cpu >= nr_cpu_ids ||
		    !cpu_online(cpu) || ncpus == WQKIT_CPUS_MAX) {
			pr_err("cpus=%s: '%s' is not an online CPU (or more than %u CPUs)\n", cpus, item, WQKIT_CPUS_MAX);
			ret = -EINVAL;
			break;
		}
		cpu_list[ncpus++] = cpu;
	}
	kfree(list);
	return ret;
}

static int __init kserver_init(void)
{
	int ret;

	ret = wqkit_check_params() ?:
	      kserver_parse_cpus();
	if (ret)
		return ret;
	graph_text = kvmalloc(MAX_TEXT + 1, GFP_KERNEL);
	if (!graph_text)
		return -ENOMEM;
	graph_dir = debugfs_create_dir("wqkit_kserver", NULL);
	if (IS_ERR(graph_dir)) {
		kvfree(graph_text);
		return PTR_ERR(graph_dir);
	}
	debugfs_create_file("graph", 0200, graph_dir, NULL, &kserver_graph_fops);
	debugfs_create_file("run", 0200, graph_dir, NULL, &kserver_run_fops);
	debugfs_create_file("trial", 0200, graph_dir, NULL, &kserver_trial_fops);
	debugfs_create_file("parsed", 0400, graph_dir, NULL, &kserver_parsed_fops);
	debugfs_create_bool("fault_early_start", 0600, graph_dir, &trial.fault_early_start);
	pr_info("loaded: write a graph to /sys/kernel/debug/wqkit_kserver/graph, then 1 to run\n");
	return 0;
}

static void __exit kserver_exit(void)
{
	debugfs_remove_recursive(graph_dir);
	if (started)
		wqkit_experiment_stop(&xp);
	kserver_free();
	if (trial.wq)
		destroy_workqueue(trial.wq);
	kvfree(trial.parsed);
	kvfree(graph_text);
	pr_info("unloaded\n");
}

module_init(kserver_init);
module_exit(kserver_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wqkit: a graph of dependent tasks run on a workqueue");
