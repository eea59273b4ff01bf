"""Running a study on Dask distributed: a LocalCluster sized to this machine, or any cluster.

Every planned boot of the study (a block's runs of one lab) is one Dask task
that needs one ``VM`` resource, so a worker runs one VM at a time; tasks are
prioritised in the study's randomised order. The client alone writes the study
directory: each finished run comes back as a Dask event, the client pulls its
files from the worker's scratch space (wqkit.study.transfer, hashes checked)
and only then records it in the index (``study.parquet``, rewritten
atomically after each), so Ctrl-C or a lost worker leaves it consistent and
``resume`` runs only what has no ok run (in new boots). A worker that dies
mid-boot is replaced by its nanny and the scheduler gives its task to a
worker again, which skips the runs already received; each attempt is recorded.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from wqkit.console import NO_BARS_ENV
from wqkit.errors import WqkitError
from wqkit.runs.lifecycle import iso
from wqkit.lab.vm import reap_orphans
from wqkit.paths import write_atomically
from wqkit.study.index import INDEX, STUDY_META, attempts, new_index, read_index, record_attempt, write_index
from wqkit.study.order import boots, schedule
from wqkit.study.spec import Study, check_kernels
from wqkit.study.transfer import clear_scratch, discard, receive
from wqkit.study.worker import (ATTEMPT_TOPIC, RECEIVED_TOPIC, RUN_TOPIC, RUNS_DIR, SessionsPlugin, host_facts,
                                run_boot)

STUDY_FILE = "study.toml"
#: Seconds without a finished run after which a progress line says what still runs.
HEARTBEAT_S = 30.0
#: Seconds a study on an existing scheduler waits for its first worker.
WORKERS_WAIT_S = 120.0


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
        try:
            client.wait_for_workers(1, timeout=WORKERS_WAIT_S)
        except TimeoutError:
            client.close()
            raise WqkitError(f"no worker joined {choice.scheduler} within {WORKERS_WAIT_S:g} s: start them with "
                             f"`wqkit study worker {choice.scheduler}` on each lab host") from None
        progress(f"Dask scheduler {choice.scheduler}, {len(client.scheduler_info()['workers'])} worker(s)")
        return client, cluster
    slots = local_slots(study, choice)
    # Two threads: one for the boot's task, one for the client's pulls of finished runs.
    cluster = LocalCluster(n_workers=slots, threads_per_worker=2, processes=True, resources={"VM": 1},
                           dashboard_address="127.0.0.1:0", silence_logs=40,
                           env={NO_BARS_ENV: "1"})     # workers' progress bars would interleave
    client = Client(cluster)
    progress(f"Dask scheduler {client.scheduler.address}, dashboard {client.dashboard_link}")
    return client, cluster


def _slots_by_host(client, choice: ClusterChoice, facts: dict[str, dict]) -> dict[str, int]:
    """VM slots per host name (as the workers' hosts call themselves in their ``facts``)."""
    names = {address: host["host"] for address, host in facts.items()}
    hosts: dict[str, int] = {}
    for address, info in client.scheduler_info()["workers"].items():
        slots = int(info.get("resources", {}).get("VM", 0))
        if slots and info.get("nthreads", 1) < slots + 1:
            raise WqkitError(f"worker {address} has {info.get('nthreads')} thread(s) for {slots} VM slot(s): the "
                             "client's pulls of finished runs need one more; start workers with `wqkit study worker`")
        if slots and address in names:
            hosts[names[address]] = hosts.get(names[address], 0) + slots
    if not hosts:
        raise WqkitError("the Dask cluster has no worker with a VM resource (start workers with --resources VM=1)")
    if choice.exclusive and any(n > 1 for n in hosts.values()):
        raise WqkitError(f"--exclusive: hosts with more than one VM slot: {hosts}")
    return hosts


def _check_hosts(client, kernels: list[str]) -> dict[str, dict]:
    """Every worker's host facts (wqkit.study.worker.host_facts) by worker address, once every
    host can boot every kernel level with this client's wqkit version; else a one-line error
    naming a host that cannot (before anything boots)."""
    from wqkit import __version__

    facts = client.run(host_facts, kernels)
    for address, host in facts.items():
        if host["missing"]:
            kernel, why = next(iter(host["missing"].items()))
            raise WqkitError(f"host {host['host']} (worker {address}) cannot boot kernel level {kernel!r}: {why}")
        if host["wqkit"] != __version__:
            raise WqkitError(f"host {host['host']} (worker {address}) runs wqkit {host['wqkit']} and this client "
                             f"{__version__}: install the same version on every host")
    return facts


def prepare(study: Study, out: Path, resume: bool) -> pd.DataFrame:
    """The study directory and its index: new, or the one to resume (same grid, same seed)."""
    meta_path = out / STUDY_META
    if meta_path.is_file():
        if not resume:
            raise WqkitError(f"{out} holds a study already: pass --resume to run what it misses, or "
                             "another --out")
        known = json.loads(meta_path.read_text())
        if known["digest"] != study.digest:
            raise WqkitError(f"{out}: its study had other points, parameters, replication or seed "
                             f"({known['digest']}, this file {study.digest}); give another --out")
        index = read_index(out)
        index.loc[index["status"] != "ok", "status"] = "pending"
        return index
    leftovers = [name for name in (RUNS_DIR, INDEX) if (out / name).exists()]
    if leftovers:
        raise WqkitError(f"{out} holds {', '.join(leftovers)} but no {STUDY_META}: not a study to resume; "
                         "give another --out (or remove what is there)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study.path, out / STUDY_FILE)
    write_atomically(meta_path, json.dumps({
        "name": study.name, "digest": study.digest, "seed": study.seed, "boots": study.boots,
        "runs_per_boot": study.runs_per_boot, "points": len(study.points), "labs": study.labs,
        "factors": {k: list(v) for k, v in study.factors.items()}, "created_at": iso(time.time())}, indent=1) + "\n")
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
    events: queue.SimpleQueue = queue.SimpleQueue()
    tally = {"ok": 0, "failed": 0}

    received: set[str] = set()

    def record(key: str, row: dict) -> None:
        """A finished run into ``out`` and the index (once: its event and its task's result both
        bring it, known by its attempt id, not its scratch path, which the next run may reuse once
        this one is pulled and deleted; a failed run made ok by its boot's retry, after its worker
        died, becomes ok)."""
        attempt = row.get("attempt")
        if attempt in received:
            return
        status = index.at[key, "status"]
        if status == "ok" or (status == "failed" and row["status"] != "ok"):
            _discard(client, row)       # a run made twice (its first worker died after sending it)
            return
        row = _pulled(client, out, key, row, study.digest)
        if attempt:
            received.add(attempt)
        tally["failed"] -= status == "failed"
        _set_row(index, key, row)
        index["attempts"] = index["key"].map(attempts(out)).fillna(0).astype(int)
        write_index(out, index)
        tally["ok" if row["status"] == "ok" else "failed"] += 1
        progress(_progress_line(tally["ok"], tally["failed"], len(todo), time.monotonic() - started, key, row))

    try:
        client.register_plugin(SessionsPlugin())
        hosts = _check_hosts(client, sorted({p.kernel for p in study.points}))
        slots = _slots_by_host(client, choice, hosts)
        _record_session(out, {"slots_by_host": slots, "scheduler": choice.scheduler or "LocalCluster",
                              "workers": hosts, "started_at": iso(time.time()), "runs": len(todo)})
        settings = {"name": study.name, "digest": study.digest, "timeout": study.timeout, "memory": study.memory}
        client.subscribe_topic(RUN_TOPIC, lambda event: events.put(event[1]))
        client.subscribe_topic(ATTEMPT_TOPIC, lambda event: record_attempt(out, event[1]))
        for runs in boots(todo):
            future = client.submit(run_boot, runs, settings, slots, resources={"VM": 1}, pure=False,
                                   key=f"boot-{runs[0].order}-{runs[0].boot}", priority=-runs[0].order)
            futures[future] = runs
            for run in runs:
                index.at[run.key, "status"] = "running"
        for future in _completed(futures, events, record, started, progress):
            runs = futures.pop(future)
            try:
                rows = future.result()
            except Exception as exc:  # noqa: BLE001  the task itself broke: recorded, never lost
                rows = {run.key: {"status": "failed", "error": f"{type(exc).__name__}: {exc}"} for run in runs}
            # Forget the result on the worker: were that worker to die later, the scheduler
            # would otherwise run the task again to recover a result nobody needs.
            future.release()
            for run in runs:
                record(run.key, rows.get(run.key, {"status": "failed", "error": "its boot returned no row"}))
            reap_orphans()
    except KeyboardInterrupt:
        progress("interrupted: stopping the workers and their VMs; the index keeps what finished")
        raise
    finally:
        for future in futures:
            future.cancel()
        _drain(events, record)
        _clear_scratch(client, study.digest)
        index.loc[index["status"] == "running", "status"] = "pending"
        index["attempts"] = index["key"].map(attempts(out)).fillna(0).astype(int)
        write_index(out, index)
        client.close()
        if cluster is not None:
            cluster.close()
        reap_orphans()
        _record_session(out, {"ended_at": iso(time.time())})
    return index


def _pulled(client, out: Path, key: str, row: dict, digest: str) -> dict:
    """``row`` once its run directory is in ``out/runs`` (pulled from its worker, which then
    deletes its copy); failed if its files could not be had. A received ok run is logged for
    the workers: a task run again skips it."""
    transfer = row.get("transfer")
    if not transfer:
        return row
    try:
        final, moved = receive(client, row["worker"], transfer, out / RUNS_DIR)
    except WqkitError as exc:
        return {**row, "status": "failed", "run_dir": None, "error": str(exc)}
    _discard(client, row)
    if row["status"] == "ok":
        client.log_event(RECEIVED_TOPIC, {"key": key, "digest": digest})
    return {**row, "run_dir": str(final.relative_to(out)), "bytes_moved": moved}


def _clear_scratch(client, digest: str) -> None:
    """Every worker deletes what is left of the study's runs in its scratch space."""
    try:
        client.run(clear_scratch, digest)
    except Exception:  # noqa: BLE001  a worker gone or the cluster closing: its host keeps it until next time
        pass


def _discard(client, row: dict) -> None:
    """Have a run's worker delete its scratch copy (if that worker is still there)."""
    from distributed import fire_and_forget

    transfer = row.get("transfer")
    if transfer and row["worker"] in client.scheduler_info()["workers"]:
        fire_and_forget(client.submit(discard, transfer["path"], workers=[row["worker"]],
                                      allow_other_workers=False, pure=False))


def _set_row(index: pd.DataFrame, key: str, row: dict) -> None:
    """A run's new values into its index row (what the index has no column for is left out)."""
    for column, value in row.items():
        if column in index.columns:
            index.at[key, column] = value


def _drain(events: queue.SimpleQueue, record: Callable[[str, dict], None]) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        record(event["key"], {k: v for k, v in event.items() if k != "key"})


def _completed(futures: dict, events: queue.SimpleQueue, record: Callable[[str, dict], None], started: float,
               progress: Callable[[str], None]) -> Iterator:
    """The boots' futures as they complete, recording the runs their events bring meanwhile;
    while nothing comes for HEARTBEAT_S, a line saying what is under way (a first boot under
    TCG, or a long run, is minutes of silence otherwise)."""
    from distributed import wait

    pending, total = set(futures), len(futures)
    quiet_since = time.monotonic()
    while pending:
        try:
            finished, _ = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:
            finished = set()
        if not events.empty():
            quiet_since = time.monotonic()
        _drain(events, record)
        if not finished and time.monotonic() - quiet_since > HEARTBEAT_S:
            quiet_since = time.monotonic()
            progress(f"… {total - len(pending)} of {total} boots finished, {time.monotonic() - started:.0f} s "
                     "elapsed")
        for future in finished:
            quiet_since = time.monotonic()
            pending.discard(future)
            yield future


def _record_session(out: Path, facts: dict) -> None:
    """Append what this invocation did to study.json's ``sessions`` (a resumed study has several)."""
    path = out / STUDY_META
    meta = json.loads(path.read_text())
    sessions = meta.setdefault("sessions", [])
    if "started_at" in facts or not sessions:
        sessions.append({})
    sessions[-1].update(facts)
    write_atomically(path, json.dumps(meta, indent=1) + "\n")


def _progress_line(done: int, failed: int, total: int, elapsed: float, key: str, row: dict) -> str:
    finished = done + failed
    eta = elapsed / finished * (total - finished)
    return (f"[{finished}/{total}] {done} ok, {failed} failed, {total - finished} to go, ETA {eta:.0f} s"
            f" — {key}: {row['status']}" + (f" ({row.get('error')})" if row["status"] != "ok" else ""))
