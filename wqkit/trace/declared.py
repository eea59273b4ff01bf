"""Tracers that are only a declaration and a program: run around a load, their lines parsed as declared.

A tracer declared with ``program`` (and no ``runner``) in ``NAME.toml``
(wqkit.runs.kinds) runs here: its program (``NAME.bt`` for bpftrace,
``NAME.c`` for BCC, beside the TOML, copied into the target) is attached with
every engine asked for, then the load runs: the experiment its ``during``
parameter names, with that experiment's parameters, or ``duration`` seconds.
Each printed line ``EVENT v1 v2 ...`` whose EVENT a ``[[line]]`` declares is a
row of its table (``event``, the declared fields as integers, ``engine``);
the run directory is like every tracer's (meta.json with counts, losses and
attach times, ``trace-ENGINE.txt``), and a loss fails the run.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from wqkit.errors import WqkitError
from wqkit.experiments.graph import TaskGraph
from wqkit.experiments.runner import run_experiment
from wqkit.runs.kinds import RunKind
from wqkit.runs.lifecycle import RUN_TIMEOUT_S, Recording, recorded_run
from wqkit.target import Target
from wqkit.trace.engine import (DEFAULT_ENGINE, Tracing, TracerProgram, check_engines, check_lost, check_root,
                                keep_outputs)

#: Rows a declared tracer keeps per engine; more mark the table truncated.
MAX_ROWS = 1_000_000


def program(kind: RunKind) -> TracerProgram:
    """The declared tracer's program, from its directory."""
    assert kind.program is not None and kind.spec_file is not None
    return TracerProgram(kind.program, list(kind.probes), directory=kind.spec_file.parent)


def parse_lines(kind: RunKind, text: str) -> tuple[pd.DataFrame, bool]:
    """The declared lines of a tracer's output as rows, and whether there were more than MAX_ROWS."""
    fields = {line.event: line.fields for line in kind.lines}
    columns = ["event", *dict.fromkeys(f for line in kind.lines for f in line.fields)]
    rows = []
    for line in text.splitlines():
        event, *values = line.split() or [""]
        if event in fields and len(values) == len(fields[event]):
            try:
                rows.append({"event": event, **dict(zip(fields[event], map(int, values)))})
            except ValueError:
                continue
    return pd.DataFrame(rows[:MAX_ROWS], columns=columns), len(rows) > MAX_ROWS


def run_load(run: Recording, meta: dict, during: str | None, values: Mapping[str, object], duration: float,
             timeout: float, graph: TaskGraph | None = None) -> None:
    """What a tracer watches: the ``during`` experiment (its run directory inside this one,
    named in ``meta["experiment_run"]``), or ``duration`` seconds of whatever the target does."""
    if during:
        exp_dir = run_experiment(during, values, target=run.target, out=run.path, timeout=timeout,
                                 progress=run.progress, graph=graph)
        meta["experiment_run"] = exp_dir.name
    else:
        run.progress(f"tracing for {duration:g} s")
        time.sleep(duration)


def run(declared: RunKind, own: Mapping[str, object], values: Mapping[str, object], *,
        graph: TaskGraph | None = None, target: Target | None = None, target_name: str = "lab",
        out: Path = Path("runs"), progress: Callable[[str], None] = print,
        annotations: Mapping[str, object] | None = None, **lab_options) -> Path:
    """The registry's runner of a declared tracer; the run directory."""
    traced = program(declared)
    engines = check_engines(own.get("engine", DEFAULT_ENGINE))
    traced.check_engines(engines)
    during = str(own.get(declared.load_param or "", "")) or None
    if during is None and "duration" not in own:
        raise WqkitError(f"{declared.name}: declare a during or a duration parameter: it needs a load")
    meta: dict = {"kind": declared.name, "experiment": declared.name, "engine": "+".join(engines),
                  "engines": engines, "program": traced.name, "probes": traced.probes, "during": during,
                  **(annotations or {})}
    with recorded_run(Path(out), declared.name.replace("_", "-"), meta, target=target, target_name=target_name,
                      progress=progress, before_boot=lambda opened: declared.check_release(own, values, opened.release),
                      **lab_options) as recorded:
        check_root(recorded.target)
        tracing = Tracing(recorded.target, engines, traced, recorded.progress)
        try:
            with tracing:
                run_load(recorded, meta, during, values, float(own.get("duration", 0.0)),
                         float(own.get("timeout", RUN_TIMEOUT_S)), graph)
        finally:
            rows = keep_outputs(tracing, recorded.path, meta, partial(parse_lines, declared))
            rows.to_parquet(recorded.path / declared.table, index=False)
        check_lost(meta)
    return recorded.final
