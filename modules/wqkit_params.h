/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wqkit_params - what the generated NAME_params.h headers use: module
 * parameters are declared in NAME.toml, and the build generates from it
 * their definitions and wqkit_check_params() (python -m wqkit.runs.cgen).
 */
#ifndef _WQKIT_PARAMS_H
#define _WQKIT_PARAMS_H

#include <linux/errno.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>
#include <linux/types.h>

/* 0 if min <= value <= max, else -EINVAL and a pr_err naming the parameter. */
static inline int wqkit_param_range(const char *name, long long value, long long min, long long max)
{
	if (value >= min && value <= max)
		return 0;
	pr_err("%s=%lld is out of range (%lld..%lld)\n", name, value, min, max);
	return -EINVAL;
}

#endif /* _WQKIT_PARAMS_H */
