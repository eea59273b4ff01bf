"""Running a study on Dask distributed: a LocalCluster sized to this machine, or any cluster.

Every run of the study is one Dask task that needs one ``VM`` resource, so a
worker runs one VM at a time; tasks are prioritised in the study's
randomised order. Results stream back into the index (``study.parquet``,
rewritten atomically after each), so Ctrl-C or a lost worker leaves it
consistent and ``resume`` runs only what has no ok run. A worker that dies
mid-run is replaced by its nanny and the scheduler gives its task to a
worker again; each attempt is recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from wqkit.console import NO_BARS_ENV
from wqkit.errors import WqkitError
from wqkit.experiments.lifecycle import iso
from wqkit.lab.vm import reap_orphans
from wqkit.study.index import STUDY_META, attempts, new_index, read_index, write_index
from wqkit.study.order import ScheduledRun, schedule
from wqkit.study.spec import Study, check_kernels

STUDY_FILE = "study.toml"
#: Seconds without a finished run after which a progress line says what still runs.
HEARTBEAT_S = 30.0


@dataclass(frozen=True)
class ClusterChoice:
    """Where the study runs: a local cluster of ``slots`` VMs, or an existing scheduler."""

    slots: int | None = None
    scheduler: str | None = None
    allow_oversubscribe: bool = False
    exclusive: bool = False


def local_slots(study: Study, choice: ClusterChoice) -> int:
    """VM slots on this machine: max(1, cores // lab CPUs) unless given; more VMs than cores is
    refused unless allowed (TCG timings would mean nothing, KVM's would be skewed). The one
    default slot of a host with fewer cores than a lab has CPUs is allowed: one VM at a time
    is what any single run does there too."""
    cores = os.cpu_count() or 1
    cpus = max(p.cpus for p in study.points)
    slots = 1 if choice.exclusive else choice.slots or max(1, cores // cpus)
    if slots < 1:
        raise WqkitError("--slots must be at least 1")
    if slots * cpus > cores and not choice.allow_oversubscribe and not (slots == 1 and not choice.slots):
        raise WqkitError(f"{slots} VMs of {cpus} CPUs need {slots * cpus} cores and this host has {cores}: "
                         "timings would be skewed (TCG: meaningless); pass --allow-oversubscribe to run anyway")
    return slots


def _client(study: Study, choice: ClusterChoice, progress: Callable[[str], None]):
    from distributed import Client, LocalCluster

    if choice.scheduler:
        client = Client(choice.scheduler)
        cluster = None
    else:
        slots = local_slots(study, choice)
        cluster = LocalCluster(n_workers=slots, threads_per_worker=1, processes=True, resources={"VM": 1},
                               dashboard_address=":0", silence_logs=40,
                               env={NO_BARS_ENV: "1"})     # workers' progress bars would interleave
        client = Client(cluster)
    progress(f"Dask scheduler {client.scheduler.address}, dashboard {client.dashboard_link}")
    return client, cluster


def _slots_by_host(client, choice: ClusterChoice) -> dict[str, int]:
    """VM slots per host name (as the workers' hosts call themselves)."""
    names = client.run(socket.gethostname)
    hosts: dict[str, int] = {}
    for address, info in client.scheduler_info()["workers"].items():
        slots = int(info.get("resources", {}).get("VM", 0))
        if slots and address in names:
            hosts[names[address]] = hosts.get(names[address], 0) + slots
    if not hosts:
        raise WqkitError("the Dask cluster has no worker with a VM resource (start workers with --resources VM=1)")
    if choice.exclusive and any(n > 1 for n in hosts.values()):
        raise WqkitError(f"--exclusive: hosts with more than one VM slot: {hosts}")
    return hosts


def prepare(study: Study, out: Path, resume: bool) -> pd.DataFrame:
    """The study directory and its index: new, or the one to resume (same grid, same seed)."""
    meta_path = out / STUDY_META
    if meta_path.is_file():
        if not resume:
            raise WqkitError(f"{out} holds a study already: pass --resume to run what it misses, or "
                             "another --out")
        known = json.loads(meta_path.read_text())
        if known["digest"] != study.digest:
            raise WqkitError(f"{out}: its study had another grid or seed ({known['digest']}, this file "
                             f"{study.digest}); give another --out")
        index = read_index(out)
        index.loc[index["status"] != "ok", "status"] = "pending"
        return index
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study.path, out / STUDY_FILE)
    meta_path.write_text(json.dumps({"name": study.name, "digest": study.digest, "seed": study.seed,
                                     "repetitions": study.repetitions, "points": len(study.points),
                                     "factors": {k: list(v) for k, v in study.factors.items()},
                                     "created_at": iso(time.time())}, indent=1) + "\n")
    index = new_index(schedule(study))
    write_index(out, index)
    return index


def run_study(study: Study, out: Path, choice: ClusterChoice = ClusterChoice(), resume: bool = False,
              progress: Callable[[str], None] = print) -> pd.DataFrame:
    """Run every run of ``study`` without an ok run yet into ``out``; return the index."""
    check_kernels(study)
    out = Path(out)
    index = prepare(study, out, resume)
    todo = [run for run in schedule(study) if index.at[run.key, "status"] != "ok"]
    if not todo:
        progress(f"{study.name}: every run is done already ({len(index)} ok)")
        return index
    client, cluster = _client(study, choice, progress)
    started = time.monotonic()
    futures = {}
    try:
        client.register_plugin(_plugin())
        slots = _slots_by_host(client, choice)
        _record_session(out, {"slots_by_host": slots, "scheduler": choice.scheduler or "LocalCluster",
                              "started_at": iso(time.time()), "runs": len(todo)})
        settings = {"name": study.name, "digest": study.digest, "timeout": study.timeout, "memory": study.memory}
        from wqkit.study.worker import run_point

        for run in todo:
            future = client.submit(run_point, run, str(out), settings, slots, key=f"run-{run.order}-{run.key}",
                                   resources={"VM": 1}, priority=-run.order, pure=False)
            futures[future] = run
            index.at[run.key, "status"] = "running"
        done = failed = 0
        for future in _completed(futures, client, slots, started, progress):
            run = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001  the task itself broke: recorded, never lost
                row = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            # Forget the result on the worker: were that worker to die later, the scheduler
            # would otherwise run the task again to recover a result nobody needs.
            del futures[future]
            future.release()
            for column, value in row.items():
                index.at[run.key, column] = value
            index["attempts"] = index["key"].map(attempts(out)).fillna(0).astype(int)
            write_index(out, index)
            done += row["status"] == "ok"
            failed += row["status"] != "ok"
            reap_orphans()
            progress(_progress_line(done, failed, _running(client, slots), len(todo), time.monotonic() - started,
                                    run, row))
    except KeyboardInterrupt:
        progress("interrupted: stopping the workers and their VMs; the index keeps what finished")
        raise
    finally:
        for future, run in list(futures.items()):
            if not future.done():
                future.cancel()
                index.at[run.key, "status"] = "pending"
        index["attempts"] = index["key"].map(attempts(out)).fillna(0).astype(int)
        write_index(out, index)
        client.close()
        if cluster is not None:
            cluster.close()
        reap_orphans()
        _record_session(out, {"ended_at": iso(time.time())})
    return index


def _running(client, slots: dict[str, int]) -> int:
    """Runs under way: the tasks the workers hold, at most one per VM slot (a worker holds
    the tasks queued for it too)."""
    return min(sum(len(keys) for keys in client.processing().values()), sum(slots.values()))


def _completed(futures: dict, client, slots: dict[str, int], started: float,
               progress: Callable[[str], None]) -> Iterator:
    """The futures as they complete; while none does for HEARTBEAT_S, a line saying what runs
    (a first boot under TCG, or a long run, is minutes of silence otherwise)."""
    from distributed import wait

    pending, total = set(futures), len(futures)
    while pending:
        try:
            finished, _ = wait(list(pending), timeout=HEARTBEAT_S, return_when="FIRST_COMPLETED")
        except TimeoutError:
            progress(f"… {total - len(pending)} finished, {_running(client, slots)} running, {len(pending)} to go, "
                     f"{time.monotonic() - started:.0f} s elapsed")
            continue
        for future in finished:
            pending.discard(future)
            yield future


def _plugin():
    from wqkit.study.worker import SessionsPlugin

    return SessionsPlugin()


def _record_session(out: Path, facts: dict) -> None:
    """Append what this invocation did to study.json's ``sessions`` (a resumed study has several)."""
    path = out / STUDY_META
    meta = json.loads(path.read_text())
    sessions = meta.setdefault("sessions", [])
    if "started_at" in facts or not sessions:
        sessions.append({})
    sessions[-1].update(facts)
    path.write_text(json.dumps(meta, indent=1) + "\n")


def _progress_line(done: int, failed: int, running: int, total: int, elapsed: float, run: ScheduledRun,
                   row: dict) -> str:
    finished = done + failed
    eta = elapsed / finished * (total - finished)
    return (f"[{finished}/{total}] {done} ok, {failed} failed, {running} running, {total - finished} to go, "
            f"ETA {eta:.0f} s"
            f" — {run.key}: {row['status']}" + (f" ({row.get('error')})" if row["status"] != "ok" else ""))
