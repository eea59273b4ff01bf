/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wqkit_run_param - a writable "run" module parameter: writing N to
 * /sys/module/MODULE/parameters/run calls run(N) once at a time, and
 * reading it gives the sum of the N that ran. N out of 1..max is refused
 * with -EINVAL and a pr_err naming the parameter.
 *
 *	static struct wqkit_run_param run_param = { .max = 64, .run = my_run };
 *	module_param_cb(run, &wqkit_run_param_ops, &run_param, 0644);
 */
#ifndef _WQKIT_RUN_PARAM_H
#define _WQKIT_RUN_PARAM_H

#include <linux/moduleparam.h>
#include <linux/mutex.h>

struct wqkit_run_param {
	unsigned int max;
	int (*run)(unsigned int n);
	unsigned int total;	/* sum of the N that ran */
	struct mutex lock;	/* one run at a time */
};

extern const struct kernel_param_ops wqkit_run_param_ops;

#endif /* _WQKIT_RUN_PARAM_H */
