"""One run's lifecycle, for every kind of run (experiments and tracers).

:func:`recorded_run` makes the run directory (``.NAME.partial`` until the end,
so a half-written run never looks complete), logs progress into its
``run.log``, opens the target (or uses the one given), records where the
measurement comes from, and at the end checks that the clock held, marks the
run ok and writes ``meta.json``. A failure or Ctrl-C in between marks the run
failed with its reason, keeps what the run wrote, and goes on up.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from wqkit.errors import WqkitError
from wqkit.runs.kinds import tracer_param
from wqkit.runs.provenance import (check_clock_held, host_load_end, host_provenance, target_provenance,
                                          wqkit_provenance)
from wqkit.target import Target, given_or_made

#: The seconds a run's load may take before it is stopped, what it measured kept and the run marked
#: failed (``--timeout``), unless told otherwise: the ``timeout`` every run kind takes, declared
#: with the tracers' shared parameters.
RUN_TIMEOUT_S = float(tracer_param("timeout").default)


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))


class RunDirectory:
    """A run directory being written: ``.NAME.partial`` until :meth:`finish`."""

    def __init__(self, out: Path, name: str) -> None:
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # mkdir is the claim: runs of other processes may start in the same second (a study's).
        for suffix in itertools.count():
            base = f"{name}-{stamp}" + (f"-{suffix}" if suffix else "")
            if (out / base).exists():
                continue
            try:
                (out / f".{base}.partial").mkdir()
            except FileExistsError:
                continue
            break
        self.final = out / base
        self.path = out / f".{base}.partial"

    def logged(self, progress: Callable[[str], None]) -> Callable[[str], None]:
        """``progress`` that also appends each line, timestamped, to the run's ``run.log``."""
        def log(message: str) -> None:
            with open(self.path / "run.log", "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {message}\n")
            progress(message)
        return log

    def write_meta(self, meta: dict) -> None:
        tmp = self.path / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        tmp.rename(self.path / "meta.json")

    def finish(self) -> Path:
        os.rename(self.path, self.final)
        self.path = self.final
        return self.final


@dataclass
class Recording:
    """A run being recorded: where its files go (``path``), its meta, target and progress."""

    path: Path
    final: Path
    meta: dict
    target: Target
    progress: Callable[[str], None]


@contextmanager
def recorded_run(out: Path, name: str, meta: dict, *, target: Target | None = None, target_name: str = "lab",
                 progress: Callable[[str], None] = print, before_boot: Callable[[Target], None] | None = None,
                 **lab_options) -> Iterator[Recording]:
    """Record one run named ``name`` under ``out``; ``meta`` holds what the caller knows already.

    ``before_boot`` checks the opened target before anything starts in it (a lab target knows
    its kernel's release before it boots).
    The body measures into ``recording.path`` and fills ``recording.meta``; the
    run is ok when the body returns and the clock held. The directory's final
    path is ``recording.final``.
    """
    run_dir = RunDirectory(Path(out), name)
    progress = run_dir.logged(progress)
    if target is None and target_name == "lab":
        lab_options.setdefault("progress", progress)
    started = time.time()
    meta.update({"status": "failed", "error": "did not finish", "wqkit": wqkit_provenance(),
                 "host": host_provenance(), "started_at": iso(started), "run_dir": run_dir.final.name})
    try:
        with given_or_made(target, target_name, **lab_options) as opened:
            if before_boot is not None:
                before_boot(opened)
            meta.update(target_provenance(opened))
            yield Recording(run_dir.path, run_dir.final, meta, opened, progress)
            check_clock_held(opened, meta["clock"])
            meta["status"], meta["error"] = "ok", None
    except (WqkitError, KeyboardInterrupt) as exc:
        meta["status"], meta["error"] = "failed", str(exc) or type(exc).__name__
        raise
    finally:
        meta["ended_at"] = iso(time.time())
        meta["host"] = host_load_end(meta["host"])
        meta["duration_s"] = round(time.time() - started, 3)
        run_dir.write_meta(meta)
        progress(f"run directory {run_dir.finish()} ({meta['status']})")
