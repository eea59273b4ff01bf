"""Moving a finished run from a worker's scratch space to the client's study directory, through Dask.

A worker never writes the client's ``--out`` (the hosts of a cluster seldom share a
disk): it records each run into scratch space of its own
(``CACHE/study-scratch/DIGEST/runs/``) and describes the run directory in the
run's row: every file with its size and SHA-256. The client pulls each file in
chunks of at most :data:`CHUNK` bytes, compressed on the worker (Dask tasks
pinned to that worker, their results going from worker to client: no run is
pickled whole, none passes through the scheduler), checks every hash, and
renames the complete directory into ``runs/``; only then is the run recorded,
and the worker told to delete its copy. When the study ends, every worker
deletes what is left of its runs (a killed worker's). The same path serves a
LocalCluster.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import zlib
from pathlib import Path

from wqkit.errors import WqkitError
from wqkit.paths import cache_dir

#: The most bytes of a file one pull carries (before compression).
CHUNK = 8 << 20
#: Seconds a pull of one chunk may take before its run counts as lost with its worker.
PULL_TIMEOUT_S = 300.0
#: Seconds between a waiting pull's checks that its worker is still in the cluster: a task pinned
#: to a worker that has left waits for it, and would hold the study up for PULL_TIMEOUT_S.
PULL_CHECK_S = 1.0
SCRATCH = "study-scratch"


def scratch_dir(digest: str) -> Path:
    """This host's (and user's) scratch space for a study's runs: ``CACHE/study-scratch/DIGEST``."""
    return cache_dir() / SCRATCH / digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(run_dir: Path) -> dict:
    """What the client needs to pull a run directory: where it is, and each file's size and hash."""
    files = {path.relative_to(run_dir).as_posix(): [path.stat().st_size, _sha256(path)]
             for path in sorted(run_dir.rglob("*")) if path.is_file()}
    return {"path": str(run_dir), "name": run_dir.name, "files": files}


def read_chunk(path: str, offset: int, size: int) -> bytes:
    """``size`` bytes of a file from ``offset``, zlib-compressed (runs on the worker that has it)."""
    with open(path, "rb") as stream:
        stream.seek(offset)
        return zlib.compress(stream.read(size), 1)


def discard(path: str) -> None:
    """Delete a run directory from scratch once the client has it (runs on its worker)."""
    shutil.rmtree(path, ignore_errors=True)


def clear_scratch(digest: str) -> None:
    """Delete what is left of a study's runs in this host's scratch space once the study ends
    (runs the client has, or never will: the partial run of a worker killed before it finished,
    a copy whose worker died before deleting it); the workers' logs stay."""
    shutil.rmtree(scratch_dir(digest) / "runs", ignore_errors=True)


def _free_name(runs_dir: Path, name: str) -> Path:
    """``runs_dir/name``, or ``name-2``... when a run of another host took that name already."""
    candidate, suffix = runs_dir / name, 1
    while candidate.exists():
        suffix += 1
        candidate = runs_dir / f"{name}-{suffix}"
    return candidate


def _safe(relative: str) -> bool:
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _chunk(client, future, worker: str) -> bytes:
    """What the pull ``future`` brings from ``worker``; an error once that worker has left the
    cluster (killed just after its run) or after PULL_TIMEOUT_S."""
    deadline = time.monotonic() + PULL_TIMEOUT_S
    while True:
        try:
            return future.result(timeout=PULL_CHECK_S)
        except TimeoutError:
            if worker not in client.scheduler_info()["workers"]:
                raise LookupError("the worker left the cluster") from None
            if time.monotonic() > deadline:
                raise


def receive(client, worker: str, transfer: dict, runs_dir: Path) -> tuple[Path, int]:
    """Pull a run directory that ``worker`` described (:func:`describe`) into ``runs_dir``;
    return where it is and the bytes that moved. A worker gone, a pull that times out or a
    file whose hash differs is a WqkitError, and nothing is left in ``runs_dir``."""
    if worker not in client.scheduler_info()["workers"]:
        raise WqkitError(f"run {transfer['name']} was lost with its worker {worker}")
    runs_dir.mkdir(parents=True, exist_ok=True)
    incoming = runs_dir / f".{transfer['name']}.incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    moved = 0
    try:
        for relative, (size, sha256) in transfer["files"].items():
            if not _safe(relative):
                raise WqkitError(f"run {transfer['name']}: refused file name {relative!r}")
            dest = incoming / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(dest, "wb") as stream:
                for offset in range(0, max(size, 1), CHUNK):
                    future = client.submit(read_chunk, f"{transfer['path']}/{relative}", offset, CHUNK,
                                           workers=[worker], allow_other_workers=False, pure=False)
                    try:
                        packed = _chunk(client, future, worker)
                    except Exception as exc:  # noqa: BLE001  the worker died or the file went: lost
                        future.cancel()
                        raise WqkitError(f"run {transfer['name']}: pulling {relative} from {worker} failed "
                                         f"({type(exc).__name__}: {exc})") from None
                    moved += len(packed)
                    data = zlib.decompress(packed)
                    digest.update(data)
                    stream.write(data)
            if digest.hexdigest() != sha256 or dest.stat().st_size != size:
                raise WqkitError(f"run {transfer['name']}: {relative} arrived with another hash than its worker's")
        final = _free_name(runs_dir, transfer["name"])
        os.rename(incoming, final)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return final, moved
