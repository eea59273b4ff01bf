"""A study directory's runs, each with its levels and the boot it ran in (for the study-level tables)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wqkit.analysis.load import Run, TraceRun, load_run
from wqkit.study.index import levels, read_index


def boot_of(meta: dict, row: pd.Series) -> str:
    """The boot a run ran in: the guest's boot id, else its lab session, else its planned boot."""
    lab = meta.get("lab") or {}
    return str(lab.get("boot_id") or lab.get("session") or row.get("boot") or row["key"])


def ok_runs(directory: str | Path, kind: str) -> list[tuple[dict, str, Run | TraceRun]]:
    """Each ok run of ``kind`` in a study: its factor levels, the boot it ran in, the run."""
    directory = Path(directory)
    index = read_index(directory)
    ok = index[(index["status"] == "ok") & (index["experiment"] == kind)]
    found = []
    for (_, row), (_, level_row) in zip(ok.iterrows(), levels(ok).iterrows()):
        run = load_run(directory / row["run_dir"])
        found.append(({k: v for k, v in level_row.items() if v is not None and v == v}, boot_of(run.meta, row),
                      run))      # a factor its kind does not take is None (or NaN, read back)
    return found
