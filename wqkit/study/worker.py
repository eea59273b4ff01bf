"""What a Dask worker does for a study: boot one lab, run one block's runs of its lab in it, close it.

A boot is the study's unit of replication, so it is also the worker's unit of
work: each task boots a fresh guest (never the kept lab), runs its runs one
after the other and closes the guest before returning. A worker thus holds
at most one VM at any time, and no two levels of a lab factor ever share a
boot. A guest that crashed or wedged is replaced for the runs left (they
record the new boot's id), at most MAX_RETRIES times per run; every attempt
is sent to the client as a Dask event (a line of ``attempts.jsonl``).

A worker writes nothing outside its scratch space (wqkit.study.transfer): its
runs and its log go there, and each finished run is sent to the client as a
Dask event naming its files, which the client pulls. A task run again (its
worker died) skips the runs the client says it has received.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

from distributed import get_client, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from wqkit.errors import WqkitError
from wqkit.experiments.graph import parse_shape
from wqkit.lab.accel import expected_accel
from wqkit.lab.choose import resolve_kernel
from wqkit.lab.topology import parse_topology
from wqkit.lab.vm import reap_orphans
from wqkit.runs.kinds import run_kind
from wqkit.study.order import ScheduledRun
from wqkit.study.transfer import describe, scratch_dir
from wqkit.target import LabTarget

#: Replacements of a crashed guest within one run (Dask retries a boot whose worker died).
MAX_RETRIES = 2
RUNS_DIR = "runs"
#: The Dask event topics: a worker sends each finished run's row, and each attempt at a run, on
#: the first two; the client logs each run it has received (and will not take again) on the third.
RUN_TOPIC, ATTEMPT_TOPIC, RECEIVED_TOPIC = "wqkit-study-run", "wqkit-study-attempt", "wqkit-study-received"

#: The lab this worker process runs now (closed by SessionsPlugin.teardown if the worker closes).
_current: list[LabTarget] = []


class SessionsPlugin(WorkerPlugin):
    """Reaps this host's orphaned VMs when a worker starts (the VM of a worker killed before it,
    whose nanny starts this one), and closes the worker's lab, if a boot is under way, when
    the worker closes."""

    name = "wqkit-lab-sessions"

    def setup(self, worker) -> None:
        reap_orphans()

    def teardown(self, worker) -> None:
        close_sessions()


def close_sessions() -> None:
    while _current:
        _current.pop().close()


def _worker_name() -> str:
    try:
        return get_worker().address
    except ValueError:          # called outside a Dask worker (tests, debugging)
        return f"pid-{os.getpid()}"


def _send(topic: str, message: dict) -> None:
    try:
        get_worker().log_event(topic, message)
    except ValueError:          # outside a Dask worker
        pass


def received_runs(digest: str) -> set[str]:
    """The keys of the study's runs the client has received (it logs them on RECEIVED_TOPIC)."""
    try:
        events = get_client().get_events(RECEIVED_TOPIC)
    except ValueError:          # outside a Dask worker
        return set()
    return {message["key"] for _, message in events if message.get("digest") == digest}


def address_towards(scheduler: str) -> str:
    """This host's address on the route to ``scheduler`` (127.0.0.1 for a scheduler on this host):
    what its workers listen on, so that they are reachable from the scheduler and no further."""
    location = scheduler.split("://", 1)[-1]
    host, _, port = location.rpartition(":")
    if not host or not port.isdigit():
        raise WqkitError(f"scheduler address {scheduler!r} is not tcp://HOST:PORT")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host.strip("[]"), int(port)))     # UDP: no packet is sent
        except OSError as exc:
            raise WqkitError(f"scheduler address {scheduler!r}: {exc.strerror or exc}") from None
        return probe.getsockname()[0]


def worker_command(scheduler: str, slots: int, listen: str | None = None) -> list[str]:
    """The ``dask worker`` command line of this host's study workers: one process per VM slot,
    each with one ``VM`` and two threads (its boot's task, and the client's pulls of finished
    runs), listening on ``listen`` (default: :func:`address_towards` the scheduler), no
    dashboard, Dask's own files in the scratch space."""
    if slots < 1:
        raise WqkitError("--slots must be at least 1")
    # -P: the current directory is not put on sys.path (a wqkit checkout in it would shadow the installed wqkit).
    return [sys.executable, "-P", "-m", "distributed.cli.dask_worker", scheduler, "--nworkers", str(slots),
            "--nthreads", "2", "--resources", "VM=1", "--host", listen or address_towards(scheduler),
            "--no-dashboard", "--local-directory", str(scratch_dir("dask"))]


def host_facts(kernels: list[str]) -> dict:
    """What this worker's host brings to a study, asked of every worker before the study starts
    (a host that lacks a lab kernel is named then, not at its first run): its name, cores,
    accelerator, wqkit version, scratch space, and each kernel level's release or why it cannot
    boot it."""
    from wqkit import __version__

    releases, missing = {}, {}
    for kernel in kernels:
        try:
            releases[kernel] = resolve_kernel(kernel).release
        except WqkitError as exc:
            missing[kernel] = str(exc)
    return {"host": socket.gethostname(), "cores": os.cpu_count(), "user": pwd.getpwuid(os.getuid()).pw_name,
            "accel": expected_accel(), "wqkit": __version__,
            "scratch": str(scratch_dir("")), "kernels": releases, "missing": missing}


def run_boot(runs: list[ScheduledRun], study: dict, slots_by_host: dict[str, int]) -> dict[str, dict]:
    """Run one planned boot's runs (same lab, same block) in a fresh guest, into this host's
    scratch space; return each run's row by run key (its ``transfer``: the files the client
    pulls). A failure of a run (not of this worker) is its status failed, with the run
    directory that recorded it. Runs the client has received already are skipped."""
    scratch = scratch_dir(study["digest"])
    host, worker = socket.gethostname(), _worker_name()
    log_path = scratch / "workers" / f"{host}-{os.getpid()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    received = received_runs(study["digest"])
    rows: dict[str, dict] = {}
    target: LabTarget | None = None
    try:
        for run in runs:
            def log(message: str, key: str = run.key) -> None:
                with open(log_path, "a") as stream:
                    stream.write(f"{time.strftime('%H:%M:%S')} {key}: {message}\n")

            if run.key in received:     # the task runs again after its worker died
                continue
            row, target = _run_one(run, scratch, study, slots_by_host, host, worker, target, log)
            rows[run.key] = row
            _send(RUN_TOPIC, {"key": run.key, **row})
    finally:
        close_sessions()
    return rows


def _boot(point, study: dict, log: Callable[[str], None]) -> LabTarget:
    """A fresh guest for the point's lab; this worker's only one."""
    close_sessions()
    target = LabTarget(kernel=resolve_kernel(point.kernel), cpus=point.cpus, memory=study["memory"], progress=log,
                       use_kept=False, topology=parse_topology(point.topology) if point.topology else None)
    _current.append(target)
    return target


def _run_one(run: ScheduledRun, scratch: Path, study: dict, slots_by_host: dict[str, int], host: str, worker: str,
             target: LabTarget | None, log: Callable[[str], None]) -> tuple[dict, LabTarget | None]:
    """One run, in ``target`` (booted if None or dead), recorded under ``scratch``; its row and
    the target for the next."""
    point = run.point
    annotations = {"study": {"name": study["name"], "digest": study["digest"], "point": point.key,
                             "levels": dict(point.levels), "repetition": run.repetition, "block": run.block,
                             "boot": run.boot, "order": run.order, "worker": worker,
                             "slots_on_host": slots_by_host.get(host)}}
    error, path = "", None
    started = time.monotonic()
    for attempt in range(MAX_RETRIES + 1):
        attempt_id = uuid.uuid4().hex
        annotations["study"]["attempt"] = attempt_id
        _send(ATTEMPT_TOPIC, {"key": run.key, "host": host, "worker": worker, "pid": os.getpid()})
        try:
            if target is None or not target.alive:
                target = _boot(point, study, log)
            path = run_kind(point.experiment).run(
                point.params, target=target, out=scratch / RUNS_DIR, timeout=study["timeout"], progress=log,
                annotations=annotations, graph=parse_shape(point.shape) if point.shape else None)
            return {"status": "ok", "run_dir": str(path.relative_to(scratch)), "boot_id": target.session.boot_id,
                    "host": host, "worker": worker, "attempt": attempt_id,
                    "duration_s": round(time.monotonic() - started, 3), "error": None, "transfer": describe(path)}, target
        except WqkitError as exc:
            error = str(exc)
            log(f"attempt {attempt + 1} failed: {error}")
            path = _run_of_attempt(scratch / RUNS_DIR, attempt_id)
            if target is not None and target.alive:
                break           # the guest is fine: the run itself failed, trying again would too
            close_sessions()    # crashed, wedged or never booted: a new guest for the next attempt
            target = None
    return {"status": "failed", "run_dir": str(path.relative_to(scratch)) if path else None,
            "boot_id": target.session.boot_id if target is not None else None, "host": host, "worker": worker,
            "attempt": attempt_id, "duration_s": round(time.monotonic() - started, 3), "error": error,
            "transfer": describe(path) if path else None}, target


def _run_of_attempt(runs: Path, attempt_id: str) -> Path | None:
    """The run directory an attempt wrote (its meta names the attempt), if it wrote one."""
    for meta in runs.glob("*/meta.json"):
        try:
            if json.loads(meta.read_text()).get("study", {}).get("attempt") == attempt_id:
                return meta.parent
        except (OSError, ValueError):
            continue
    return None
