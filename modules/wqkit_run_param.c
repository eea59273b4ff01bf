// SPDX-License-Identifier: GPL-2.0
/*
 * wqkit_run_param - see wqkit_run_param.h. Linked into the modules that
 * run work items on demand (wq_fixture, wq_worker_death).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/sysfs.h>

#include "wqkit_run_param.h"

static int wqkit_run_param_set(const char *val, const struct kernel_param *kp)
{
	struct wqkit_run_param *param = kp->arg;
	unsigned int n;
	int ret;

	ret = kstrtouint(val, 0, &n);
	if (ret)
		return ret;
	if (n < 1 || n > param->max) {
		pr_err("run=%u is out of range (1..%u)\n", n, param->max);
		return -EINVAL;
	}
	mutex_lock(&param->lock);
	ret = param->run(n);
	if (!ret)
		param->total += n;
	mutex_unlock(&param->lock);
	return ret;
}

static int wqkit_run_param_get(char *buffer, const struct kernel_param *kp)
{
	struct wqkit_run_param *param = kp->arg;

	return sysfs_emit(buffer, "%u\n", READ_ONCE(param->total));
}

const struct kernel_param_ops wqkit_run_param_ops = {
	.set = wqkit_run_param_set,
	.get = wqkit_run_param_get,
};
