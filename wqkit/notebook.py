"""What the notebooks call: measure a run (or load an existing one) in one line."""

from __future__ import annotations

from pathlib import Path

from wqkit.analysis.load import Run, find_runs, load_run
from wqkit.console import progress_line
from wqkit.errors import WqkitError
from wqkit.run import run_experiment
from wqkit.target import Target


def measure_or_load(experiment: str, data_dir: str | Path | None = None, *, target: str | Target = "lab",
                    out: str | Path = "runs", sample_state_hz: float | None = None, **values) -> Run:
    """Load the newest ``experiment`` run under ``data_dir``; without one, measure a new run.

    ``values`` are the experiment's parameters (``nr``, ``cpu``, ``wq_flags``, ...);
    ``None`` means "not given: the module's default", and every other value,
    ``0`` and ``False`` included, is passed to the module as it is (``cpu=0``
    pins to CPU 0). ``target`` is ``"lab"``, ``"local"`` or an open Target.
    ``sample_state_hz`` samples pools and workqueues from the host during the run (lab).
    Progress goes to the terminal and to the run's ``run.log``, not into the notebook's output.
    """
    if data_dir:
        runs = [p for p in find_runs(data_dir) if load_run(p).experiment == experiment]
        if not runs:
            raise WqkitError(f"{data_dir}: no {experiment} run")
        return load_run(runs[-1])
    params = {k: v for k, v in values.items() if v is not None}
    where = {"target": target} if isinstance(target, Target) else {"target_name": target}
    return load_run(run_experiment(experiment, params, out=Path(out), progress=progress_line,
                                   sample_state_hz=sample_state_hz, **where))
