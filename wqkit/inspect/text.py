"""The seed's ``wq_monitor.py`` text layout, scenario by scenario.

Lines keep the seed's fields and widths (``pool[22] flags=0x00 ref=  1 ...``)
so that what users grep for still matches; ``rates`` adds started/completed
per second between two snapshots.
"""

from __future__ import annotations

from wqkit.inspect.model import PoolInfo, Snapshot, WorkerInfo, WorkqueueInfo

SCENARIOS = ("NORMAL", "TOTAL_WORKERS_PER_CPU", "TOTAL_WORKERS_FROM_WQ_PER_CPU", "TOTAL_WORK_ITEMS_PER_CPU",
             "ALL_POOLWORKQUEUES", "AFFINITY_SCOPES")
RULE = "-" * 50


def pool_line(pool: PoolInfo) -> str:
    """``pool[00] flags=0x00 ref=  1 nice=  0 idle/workers=  3/  3 nr_running=(int)0    cpu=  0``"""
    where = f"cpu={pool.cpu:3}" if pool.bound else f"cpus={pool.cpumask}"
    return (f"pool[{pool.id:02}] flags=0x{pool.flags:02x} ref={pool.refcnt:3} nice={pool.nice:3} "
            f"idle/workers={pool.nr_idle:3}/{pool.nr_workers:3} nr_running=(int){pool.nr_running}    {where}")


def worker_line(wq_name: str, worker: WorkerInfo) -> str:
    """``events[PID=20418, ID=2] cpu= 11 Running=False``"""
    return f"{wq_name}[PID={worker.pid}, ID={worker.id}] cpu={worker.cpu:3} Running={worker.running} "


def _na(value: int | None, width: int = 8) -> str:
    return f"{value:{width}}" if value is not None else f"{'n/a':>{width}}"


def workqueue_block(snap: Snapshot, wq: WorkqueueInfo, verbose: bool,
                    previous: Snapshot | None = None) -> list[str]:
    """One workqueue as the seed's NORMAL scenario prints it."""
    lines = [f"{wq.name:24}", f" ├─flags=0x{wq.flags:02x} type={wq.type:9}"]
    if verbose:
        for pool_id in sorted({p.pool_id for p in wq.pwqs}, reverse=True):
            pool = snap.pool(pool_id)
            lines.append(f" ├─{pool_line(pool)}")
            lines += [f" ├─{worker_line(wq.name, w)}" for w in snap.workers
                      if w.pool_id == pool_id and w.desc == wq.name]
            lines.append("")
    lines += [f" ├─nr_active={wq.nr_active:8}", f" ├─nr_activev2={wq.nr_active_nodes:8}",
              f" ├─started={_na(wq.started)} completed={_na(wq.completed)} "]
    before = previous.workqueue(wq.name, snap.occurrence(wq)) if previous else None
    if before is not None and wq.stats and before.stats and snap.time > previous.time:
        dt = snap.time - previous.time
        lines.append(f" ├─rate started={(wq.started - before.started) / dt:10.1f}/s "
                     f"completed={(wq.completed - before.completed) / dt:10.1f}/s")
    return lines + [RULE]


def scenario_lines(snap: Snapshot, scenario: str, workqueues: list[WorkqueueInfo], verbose: bool = False,
                   active_only: bool = False, previous: Snapshot | None = None) -> list[str]:
    """The lines one scenario prints for one snapshot (without the iteration header)."""
    if scenario == "NORMAL":
        return [line for wq in workqueues for line in workqueue_block(snap, wq, verbose, previous)]
    if scenario == "ALL_POOLWORKQUEUES":
        return [pool_line(p) for p in sorted(snap.pools, key=lambda p: p.id) if p.active or not active_only]
    cpus = sorted({p.cpu for p in snap.pools if p.bound})
    if scenario == "TOTAL_WORKERS_PER_CPU":
        lines = [f"cpu={cpu:3} workers={sum(p.nr_workers for p in snap.pools if p.cpu == cpu):4} "
                 f"idle={sum(p.nr_idle for p in snap.pools if p.cpu == cpu):4}" for cpu in cpus]
        unbound = [p for p in snap.pools if not p.bound]
        return lines + [f"unbound workers={sum(p.nr_workers for p in unbound):4} "
                        f"idle={sum(p.nr_idle for p in unbound):4}"]
    if scenario == "TOTAL_WORKERS_FROM_WQ_PER_CPU":
        return [f"{wq.name:24} cpu={cpu:3} workers={sum(1 for w in snap.workers if w.cpu == cpu and w.desc == wq.name):4}"
                for wq in workqueues for cpu in cpus]
    if scenario == "AFFINITY_SCOPES":
        return scope_lines(snap, workqueues)
    if scenario == "TOTAL_WORK_ITEMS_PER_CPU":
        return [f"cpu={cpu:3} pending={sum(p.nr_pending for p in snap.pools if p.cpu == cpu):6} "
                f"running={sum(1 for w in snap.workers if w.cpu == cpu and w.running):4}" for cpu in cpus]
    raise ValueError(f"unknown scenario {scenario}")


def cpu_list(cpus: list[int]) -> str:
    """CPUs as the kernel's lists print them: ``0-3,6``."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and cpu == runs[-1][-1] + 1:
            runs[-1].append(cpu)
        else:
            runs.append([cpu])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def scope_lines(snap: Snapshot, workqueues: list[WorkqueueInfo]) -> list[str]:
    """Each affinity scope's pods (as wq_dump.py lists them), then each unbound workqueue's scope
    and the pods it spreads its work over."""
    if not snap.scopes:
        return [f"{snap.kernel_release} has no affinity scopes (Linux 6.6 brought them)"]
    lines = []
    for scope in snap.scopes:
        lines += [f"{scope.name}{' (default)' if scope.default else ''}: {len(scope.pod_cpus)} pods",
                  "  pod_cpus " + " ".join(f"[{i}]={cpu_list(cpus)}" for i, cpus in enumerate(scope.pod_cpus)),
                  "  pod_node " + " ".join(f"[{i}]={node}" for i, node in enumerate(scope.pod_node)),
                  "  cpu_pod  " + " ".join(f"[{cpu}]={pod}" for cpu, pod in enumerate(scope.cpu_pod))]
    default = next((s.name for s in snap.scopes if s.default), None)
    for wq in (w for w in workqueues if w.affinity_scope is not None):
        name = default if wq.affinity_scope == "default" else wq.affinity_scope
        scope = next((s for s in snap.scopes if s.name == name), None)
        pods = " ".join(f"[{i}]={cpu_list(c)}" for i, c in enumerate(scope.pod_cpus)) if scope else "?"
        lines.append(f"{wq.name:24} scope={wq.affinity_scope}{f' ({name})' if wq.affinity_scope == 'default' else ''}"
                     f" strict={wq.affinity_strict} pods {pods}")
    return lines + [RULE]


def iteration_text(iteration: int, lines: list[str], scenario: str) -> str:
    """The seed's framing: a header line, or ``Iteration: N`` after the pool list."""
    if scenario == "ALL_POOLWORKQUEUES":
        return "\n".join(lines + [f"Iteration: {iteration}"]) + "\n"
    return "\n".join([f"Iteration: {iteration} {RULE}"] + lines) + "\n"
