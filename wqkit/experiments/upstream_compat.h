/* SPDX-License-Identifier: GPL-2.0 */
/*
 * upstream_compat - what the kernel's own modules of Linux 7.x (lib/test_workqueue.c)
 * need to build unchanged for an older lab kernel; included before their first line.
 */
#ifndef _WQKIT_UPSTREAM_COMPAT_H
#define _WQKIT_UPSTREAM_COMPAT_H

#include <linux/slab.h>

/* Linux 7.0's typed allocators: an array of @count objects of @p's type, zeroed. */
#ifndef kzalloc_objs
#define kzalloc_objs(p, count) kcalloc(count, sizeof(p), GFP_KERNEL)
#endif

#endif /* _WQKIT_UPSTREAM_COMPAT_H */
