"""What the notebooks call: measure a run (or load an existing one) in one line."""

from __future__ import annotations

from pathlib import Path

from wqkit.analysis.load import Run, find_runs, load_run
from wqkit.errors import WqkitError
from wqkit.run import run_experiment


def measure_or_load(experiment: str, data_dir: str | Path | None = None, *, target: str = "lab",
                    out: str | Path = "runs", **values) -> Run:
    """Load the newest ``experiment`` run under ``data_dir``; without one, measure a new run.

    ``values`` are the experiment's parameters (``nr``, ``cpu``, ``wq_flags``, ...);
    ``-1``, ``0``, ``""`` and ``False`` mean "the module's default".
    """
    if data_dir:
        runs = [p for p in find_runs(data_dir) if load_run(p).experiment == experiment]
        if not runs:
            raise WqkitError(f"{data_dir}: no {experiment} run")
        return load_run(runs[-1])
    params = {k: v for k, v in values.items() if v not in (None, "", False) and not (k == "cpu" and v == -1)}
    return load_run(run_experiment(experiment, params, target_name=target, out=Path(out)))
