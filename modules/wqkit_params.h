/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wqkit_params - what the generated NAME_params.h headers use: module
 * parameters are declared in NAME.toml, and the build generates from it
 * their definitions and wqkit_check_params() (python -m wqkit.runs.cgen).
 */
#ifndef _WQKIT_PARAMS_H
#define _WQKIT_PARAMS_H

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <linux/types.h>

/* 0 if min <= value <= max, else -EINVAL and a pr_err naming the parameter. */
static inline int wqkit_param_range(const char *name, long long value, long long min, long long max)
{
	if (value >= min && value <= max)
		return 0;
	pr_err("%s=%lld is out of range (%lld..%lld)\n", name, value, min, max);
	return -EINVAL;
}

/* 0 if @value is one of the @nr @choices, else -EINVAL and a pr_err naming the parameter. */
static inline int wqkit_param_choice(const char *name, const char *value, const char * const *choices,
				     size_t nr)
{
	if (value && match_string(choices, nr, value) >= 0)
		return 0;
	pr_err("%s=%s is not one of the declared choices (first: %s)\n", name, value ?: "(null)", choices[0]);
	return -EINVAL;
}

/* 0 if @value has no bit outside @mask (the flags this module takes), else -EINVAL. */
static inline int wqkit_param_bits(const char *name, unsigned int value, unsigned int mask)
{
	if (!(value & ~mask))
		return 0;
	pr_err("%s=0x%x has a flag this module does not take (it takes 0x%x)\n", name, value, mask);
	return -EINVAL;
}

/* 0 unless @value has every bit of @both (@what: the two flags), which exclude each other. */
static inline int wqkit_param_exclusive(const char *name, unsigned int value, unsigned int both,
					const char *what)
{
	if ((value & both) != both)
		return 0;
	pr_err("%s=0x%x: %s exclude each other\n", name, value, what);
	return -EINVAL;
}

/* 0 unless @name is @changed from its default without the flag it needs (@has), else -EINVAL. */
static inline int wqkit_param_requires(const char *name, bool changed, bool has, const char *needs)
{
	if (!changed || has)
		return 0;
	pr_err("%s needs %s\n", name, needs);
	return -EINVAL;
}

#endif /* _WQKIT_PARAMS_H */
