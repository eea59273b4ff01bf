/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What wqkit's modules need to build alike on every lab kernel (6.1 to 7.x).
 */
#ifndef WQKIT_COMPAT_H
#define WQKIT_COMPAT_H

#include <linux/version.h>
#include <linux/workqueue.h>

/*
 * Linux 6.17 names a per-CPU workqueue with WQ_PERCPU, the first step towards
 * unbound by default: from then on, alloc_workqueue() warns about a workqueue
 * that has neither WQ_PERCPU nor WQ_UNBOUND. Older kernels have no such flag.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 17, 0)
#define WQKIT_PERCPU_FLAG WQ_PERCPU
#else
#define WQKIT_PERCPU_FLAG 0
#endif

/*
 * Linux 6.9 runs a WQ_BH workqueue's items in softirq context. Older kernels
 * have no such flag: wqkit_experiment_start() refuses wq_flags=bh there.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
#define WQKIT_BH_FLAG WQ_BH
#else
#define WQKIT_BH_FLAG 0
#endif

#endif /* WQKIT_COMPAT_H */
