"""What a Dask worker does for a study: run one point on a warm lab session of its own.

Each worker process keeps one lab session per (kernel, CPUs, memory) it has
been asked for and reuses it for every point it runs: one boot per worker
and kernel, not per point. A guest that crashed or wedged is closed and
replaced, and the run tried again, at most MAX_RETRIES times; every attempt
is a line of ``attempts.jsonl``. The sessions are closed when the worker
closes (SessionsPlugin.teardown); a worker killed outright leaves its VMs to
the study's ``reap_orphans``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from pathlib import Path

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from wqkit.errors import WqkitError
from wqkit.experiments.graph import parse_shape
from wqkit.lab.choose import resolve_kernel
from wqkit.study.index import record_attempt
from wqkit.study.kinds import study_kind
from wqkit.study.order import ScheduledRun
from wqkit.target import LabTarget

#: Replacements of a crashed guest within one point (Dask retries a point whose worker died).
MAX_RETRIES = 2
RUNS_DIR = "runs"
#: One file per run made ok (by a hash of its key): a task run again returns it instead of a new run.
DONE_DIR = "done"

_sessions: dict[tuple[str, int, str], LabTarget] = {}


class SessionsPlugin(WorkerPlugin):
    """Closes a worker's lab sessions when the worker closes."""

    name = "wqkit-lab-sessions"

    def teardown(self, worker) -> None:
        close_sessions()


def close_sessions() -> None:
    while _sessions:
        _, target = _sessions.popitem()
        target.close()


def _session(kernel: str, cpus: int, memory: str, log) -> LabTarget:
    """This worker's session for a lab; booted on first use (and again if its guest died)."""
    key = (kernel, cpus, memory)
    if key not in _sessions:
        _sessions[key] = LabTarget(kernel=resolve_kernel(kernel), cpus=cpus, memory=memory, progress=log,
                                   use_kept=False)     # each slot its own VM, never the kept lab
    return _sessions[key]


def _drop(target: LabTarget) -> None:
    for key, known in list(_sessions.items()):
        if known is target:
            del _sessions[key]
    target.close()


def run_point(run: ScheduledRun, out: str, study: dict, slots_by_host: dict[str, int]) -> dict:
    """Run one scheduled run in this worker's warm session; return its index row's new values.

    A failure of the run itself (not of this worker) is returned as status failed, with the
    run directory that recorded it."""
    out_dir = Path(out)
    host = socket.gethostname()
    try:
        worker = get_worker().address
    except ValueError:          # called outside a Dask worker (tests, debugging)
        worker = f"pid-{os.getpid()}"
    log_path = out_dir / "workers" / f"{host}-{os.getpid()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        with open(log_path, "a") as stream:
            stream.write(f"{time.strftime('%H:%M:%S')} {run.key}: {message}\n")

    done = out_dir / DONE_DIR / (hashlib.sha256(run.key.encode()).hexdigest()[:24] + ".json")
    if done.is_file():          # made already: Dask ran the task again to recover a lost result
        return json.loads(done.read_text())
    point = run.point
    annotations = {"study": {"name": study["name"], "digest": study["digest"], "point": point.key,
                             "levels": dict(point.levels), "repetition": run.repetition, "order": run.order,
                             "worker": worker, "slots_on_host": slots_by_host.get(host)}}
    error, path = "", None
    started = time.monotonic()
    for attempt in range(MAX_RETRIES + 1):
        attempt_id = uuid.uuid4().hex
        annotations["study"]["attempt"] = attempt_id
        record_attempt(out_dir, run.key, host, worker)
        target = _session(point.kernel, point.cpus, study["memory"], log)
        try:
            path = study_kind(point.experiment, point.params).run(
                point.params, target=target, out=out_dir / RUNS_DIR, timeout=study["timeout"], progress=log,
                annotations=annotations, graph=parse_shape(point.shape) if point.shape else None)
            row = {"status": "ok", "run_dir": str(path.relative_to(out_dir)), "host": host, "worker": worker,
                   "duration_s": round(time.monotonic() - started, 3), "error": None}
            done.parent.mkdir(exist_ok=True)
            done.write_text(json.dumps(row))
            return row
        except WqkitError as exc:
            error = str(exc)
            log(f"attempt {attempt + 1} failed: {error}")
            path = _run_of_attempt(out_dir / RUNS_DIR, attempt_id)
            if target.alive:
                break           # the guest is fine: the run itself failed, trying again would too
            _drop(target)       # crashed or wedged: a new guest for the next attempt
    return {"status": "failed", "run_dir": str(path.relative_to(out_dir)) if path else None, "host": host,
            "worker": worker, "duration_s": round(time.monotonic() - started, 3), "error": error}


def _run_of_attempt(runs: Path, attempt_id: str) -> Path | None:
    """The run directory an attempt wrote (its meta names the attempt), if it wrote one."""
    for meta in runs.glob("*/meta.json"):
        try:
            if json.loads(meta.read_text()).get("study", {}).get("attempt") == attempt_id:
                return meta.parent
        except (OSError, ValueError):
            continue
    return None
