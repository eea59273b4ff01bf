"""A study's index, ``study.parquet``: one row per run (point, levels, repetition, block and
planned boot, order, run directory, the boot it really ran in, status, host, duration,
attempts, bytes moved from its worker), rewritten atomically after every change so that an interrupted study leaves it
consistent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from wqkit.errors import WqkitError
from wqkit.study.order import ScheduledRun

INDEX = "study.parquet"
#: The study's own facts: name, grid digest, seed, factors and their levels, the sessions that ran it.
STUDY_META = "study.json"
#: Every attempt at a run, one JSON line each, appended by the client as the worker making it
#: says it starts (even one killed in the middle leaves its line): how retries are counted.
ATTEMPTS = "attempts.jsonl"
STATUSES = ("pending", "running", "ok", "failed")


def new_index(runs: list[ScheduledRun]) -> pd.DataFrame:
    """The index of a study not yet run: every run pending, its factor levels as columns."""
    rows = []
    for run in runs:
        row = {"key": run.key, "point": run.point.key, "experiment": run.point.experiment,
               "repetition": run.repetition, "block": run.block, "boot": run.boot, "order": run.order,
               "status": "pending", "run_dir": None, "boot_id": None, "host": None, "worker": None,
               "duration_s": None, "attempts": 0, "bytes_moved": None, "error": None}
        rows.append(row | {f"level:{k}": json.dumps(v) for k, v in run.point.levels.items()})
    return pd.DataFrame(rows).set_index("key", drop=False)


def write_index(directory: Path, index: pd.DataFrame) -> Path:
    """Write ``study.parquet`` atomically (a reader never sees half a file)."""
    path = directory / INDEX
    tmp = path.with_suffix(".parquet.tmp")
    index.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_index(directory: Path) -> pd.DataFrame:
    """A study directory's index, or a one-line error."""
    path = Path(directory) / INDEX
    if not path.is_file():
        raise WqkitError(f"{directory}: no {INDEX} (not a study directory)")
    return pd.read_parquet(path).set_index("key", drop=False)


def levels(index: pd.DataFrame) -> pd.DataFrame:
    """The factor levels of each run, one column per factor, as the study file gave them."""
    columns = [c for c in index.columns if c.startswith("level:")]
    return index[columns].apply(lambda col: col.map(lambda v: json.loads(v) if isinstance(v, str) else None)) \
        .rename(columns=lambda c: c.removeprefix("level:"))


def record_attempt(directory: Path, attempt: dict) -> None:
    """Append one attempt's line: the run's ``key``, and the host, worker and process that tried it."""
    with open(directory / ATTEMPTS, "a") as out:
        out.write(json.dumps(attempt) + "\n")


def attempts(directory: Path) -> dict[str, int]:
    """How many attempts each run had, by run key."""
    path = directory / ATTEMPTS
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines() if path.is_file() else ():
        key = json.loads(line)["key"]
        counts[key] = counts.get(key, 0) + 1
    return counts
