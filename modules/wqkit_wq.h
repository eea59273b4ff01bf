/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wqkit_wq - what the experiment modules share besides samples: the
 * workqueue flag bits wqkit passes (its own, so user space does not depend
 * on one kernel's WQ_* values), parameter checks that name the parameter,
 * and the runner thread that drives an experiment after module_init returns.
 */
#ifndef _WQKIT_WQ_H
#define _WQKIT_WQ_H

#include <linux/types.h>
#include <linux/workqueue.h>

/* wq_flags bits, mirrored in wqkit/experiments.py */
#define WQKIT_WQ_UNBOUND	0x1
#define WQKIT_WQ_HIGHPRI	0x2
#define WQKIT_WQ_CPU_INTENSIVE	0x4
#define WQKIT_WQ_ALL		0x7

int wqkit_check_range(const char *name, long value, long min, long max);
int wqkit_check_cpu(int cpu);
int wqkit_wq_flags(unsigned int wqkit_flags, unsigned int *wq_flags);
struct workqueue_struct *wqkit_alloc_wq(const char *name, unsigned int wqkit_flags,
					int max_active);

struct task_struct *wqkit_start_runner(int (*fn)(void *data), void *data,
				       int cpu, const char *name);
void wqkit_stop_runner(struct task_struct *runner);

#endif /* _WQKIT_WQ_H */
