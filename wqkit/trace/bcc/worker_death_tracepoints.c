/*
 * Worker death on a kernel with linux_patch_exp/'s tracepoints (BCC twin of
 * ../bpftrace/worker_death_tracepoints.bt): worker_death.c on
 * workqueue_worker_dying_start and workqueue_worker_dying_end.
 */
#define WQKIT_DYING_TRACEPOINTS
#include "worker_death.c"
