"""The registry of run kinds: every module experiment and every declared tracer, by name.

A run kind is what ``wqkit run NAME`` / ``wqkit trace COMMAND`` runs, what a
study's ``[[experiment]]`` names, and what a run directory's ``meta.json``
records as ``kind``: one declaration each.

* A module experiment is declared by its module's TOML (:mod:`wqkit.runs.spec`).
* A kernel module of the kernel's own sources (``wqkit/experiments/upstream/NAME.toml``:
  lib/test_workqueue.c) by its parameters, its runner, its table and what its runner
  needs to build it and read its output (``upstream``).
* A tracer is declared by ``NAME.toml`` in ``wqkit/trace/`` (or a directory of
  ``$WQKIT_TRACERS``): its parameters (``[[param]]``, as a module's, plus the
  host-side types float, choice and names; ``shared = NAME`` takes one from
  ``wqkit/trace/tracer_params.toml``), the Parquet table its rows go to, its
  report sections, the experiment that is its load (``load``: a fixed one, whose
  parameters it takes too, or ``load_param``: the parameter naming it), and
  either the Python function that runs it (``runner = "module:function"``) or,
  for a tracer that is just a program, the program beside the TOML and the
  lines it prints (``program``, ``probes``, ``[[line]]``), run by
  :mod:`wqkit.trace.declared`.

Runners are named, not imported, here: this layer sits below the experiments
and tracers that implement them, as an entry point names a plugin.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

from wqkit.errors import WqkitError
from wqkit.paths import SOURCE_DIR
from wqkit.runs.spec import (Experiment, Param, check_name, experiment, experiments, module_spec, read_declaration,
                             read_param)

TRACERS_DIR = SOURCE_DIR / "wqkit" / "trace"
UPSTREAM_DIR = SOURCE_DIR / "wqkit" / "experiments" / "upstream"
#: Parameters every tracer may take (engine, timeout), declared once.
TRACER_PARAMS = TRACERS_DIR / "tracer_params.toml"
TRACERS_ENV = "WQKIT_TRACERS"
#: A module experiment's runner and table.
EXPERIMENT_RUNNER = "wqkit.experiments.runner:run_kind"
SAMPLES_TABLE = "samples.parquet"
#: The runner of a tracer that declares its program instead of a runner.
DECLARED_RUNNER = "wqkit.trace.declared:run"


@dataclass(frozen=True)
class Line:
    """One kind of line a declared tracer prints: ``EVENT field field ...`` (integers)."""

    event: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RunKind:
    """One kind of run: its own parameters, the experiment it runs (its load, for a tracer),
    where its rows go, and the function that runs it."""

    name: str
    description: str
    #: Its own parameters (a module experiment's are its module's).
    params: tuple[Param, ...]
    runner: str
    table: str = SAMPLES_TABLE
    #: The `wqkit trace` command of a tracer (None: a module experiment, `wqkit run NAME`).
    command: str | None = None
    #: A tracer's load: a fixed experiment whose parameters it takes too (all but ``load_fixed``).
    load: str | None = None
    load_fixed: tuple[str, ...] = ()
    #: Or the parameter that names it (``during``).
    load_param: str | None = None
    report: tuple[str, ...] = ()
    spec_file: Path | None = None
    #: For a declared tracer: its program (beside spec_file), probe points and lines.
    program: str | None = None
    probes: tuple[str, ...] = ()
    lines: tuple[Line, ...] = ()
    experiment: Experiment | None = field(default=None, compare=False, repr=False)
    #: For an upstream module: the rest of its declaration (where its source is, what it prints).
    upstream: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tracer(self) -> bool:
        return self.command is not None

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise WqkitError(f"{self.name}: unknown parameter {name!r} (known: {', '.join(p.name for p in self.params)})")

    def default(self, name: str):
        """The declared default of one of its own parameters."""
        return self.param(name).default

    def load_experiment(self, given: Mapping[str, object]) -> Experiment | None:
        """The experiment a run of this kind with ``given`` runs (its own, its load, or none)."""
        if self.experiment is not None:
            return self.experiment
        if self.load:
            return experiment(self.load)
        chosen = given.get(self.load_param) if self.load_param else None
        return experiment(str(chosen)) if chosen else None

    def load_options(self, given: Mapping[str, object]) -> tuple[Param, ...]:
        """The load's parameters this kind takes as its own options too."""
        exp = self.load_experiment(given)
        if exp is None or exp is self.experiment:
            return ()
        return tuple(p for p in exp.options if p.name not in self.load_fixed)

    def options(self, given: Mapping[str, object] = {}) -> frozenset[str]:
        """Every parameter name a run of this kind takes (a factor applies to the kinds that take it)."""
        return frozenset(p.name for p in self.params) | {p.name for p in self.load_options(given)}

    def takes_graph(self, given: Mapping[str, object] = {}) -> bool:
        """Whether a run with ``given`` runs a task graph (kserver, or a tracer around it)."""
        exp = self.load_experiment(given)
        return bool(exp and exp.graph)

    def split(self, given: Mapping[str, object]) -> tuple[dict, dict]:
        """``given`` checked, as (its own parameters with the declared defaults filled in, its
        load's parameters as given): a one-line error for an unknown name or a bad value."""
        if self.experiment is not None:
            return {}, self.experiment.values(given)
        own_names = {p.name for p in self.params}
        own = {k: v for k, v in given.items() if k in own_names}
        load = {k: v for k, v in given.items() if k not in own_names}
        checked = {p.name: p.check(self.name, p.default if own.get(p.name) is None else own[p.name])
                   for p in self.params}
        exp = self.load_experiment(checked)
        if exp is None:
            if any(v is not None for v in load.values()):
                raise WqkitError(f"{self.name}: unknown parameters {', '.join(sorted(load))} "
                                 f"(known: {', '.join(sorted(own_names))})")
            return checked, {}
        fixed = [k for k in load if k in self.load_fixed and load[k] is not None]
        if fixed:
            raise WqkitError(f"{self.name}: {', '.join(fixed)} is fixed by the tracer, not one of its parameters")
        return checked, exp.values(load)

    def check_release(self, own: Mapping[str, object], load: Mapping[str, object], release: str) -> None:
        """A one-line error when kernel ``release`` does not take a value of the experiment this
        run loads (a scope newer than the kernel): checked before the lab boots."""
        exp = self.load_experiment(own)
        if exp is not None:
            exp.module_spec.check_release(load, release)

    def run(self, given: Mapping[str, object], **run_options) -> Path:
        """Run one of this kind (``given``: its parameters and its load's; a ``timeout`` among the
        run options is its own ``timeout`` where it has one and ``given`` does not say); the run
        directory."""
        if "timeout" in run_options and any(p.name == "timeout" for p in self.params) and given.get("timeout") is None:
            given = {**given, "timeout": run_options.pop("timeout")}
        own, load = self.split(given)
        return runner(self.runner)(self, own, load, **run_options)


def runner(name: str) -> Callable[..., Path]:
    """The function ``module:function`` names."""
    module, _, function = name.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise WqkitError(f"runner {name!r} not found ({exc})") from None


def read_tracer(path: Path) -> RunKind:
    """A tracer declaration, checked, or a one-line error."""
    data = read_declaration(path, "tracer", {"tracer", "description", "table"})
    try:
        name = check_name(data["tracer"], "tracer")
    except WqkitError as exc:
        raise WqkitError(f"{path}: {exc}") from None
    if ("runner" in data) == ("program" in data):
        raise WqkitError(f"{path}: give either its runner or its program")
    if "load" in data and "load_param" in data:
        raise WqkitError(f"{path}: give its load or the parameter naming it, not both")
    params = tuple(read_param(_with_range(t, path), path, TRACER_PARAMS) for t in data.get("param", ()))
    if data.get("load_param") and data["load_param"] not in {p.name for p in params}:
        raise WqkitError(f"{path}: load_param {data['load_param']!r} is not one of its parameters")
    lines = tuple(Line(str(t["event"]), tuple(t.get("fields", ()))) for t in data.get("line", ()))
    if "program" in data:
        if not lines:
            raise WqkitError(f"{path}: a declared program needs its [[line]]s")
        if not any((path.parent / f"{data['program']}.{ext}").is_file() for ext in ("bt", "c")):
            raise WqkitError(f"{path}: its program {data['program']}.bt (or .c) is not beside it")
    known = {"tracer", "description", "table", "runner", "command", "load", "load_fixed", "load_param", "report",
             "program", "probes", "param", "line"}
    if data.keys() - known:
        raise WqkitError(f"{path}: unknown keys {', '.join(sorted(data.keys() - known))}")
    return RunKind(name=name, description=data["description"], params=params,
                   runner=data.get("runner", DECLARED_RUNNER), table=data["table"],
                   command=data.get("command", name.removeprefix("trace_")), load=data.get("load"),
                   load_fixed=tuple(data.get("load_fixed", ())), load_param=data.get("load_param"),
                   report=tuple(data.get("report", ())), spec_file=path, program=data.get("program"),
                   probes=tuple(data.get("probes", ())), lines=lines)


def read_upstream(path: Path) -> RunKind:
    """An upstream module's declaration, checked, or a one-line error."""
    data = read_declaration(path, "upstream module", {"upstream", "description", "runner", "table", "series",
                                                       "source"})
    try:
        name = check_name(data["upstream"], "module")
    except WqkitError as exc:
        raise WqkitError(f"{path}: {exc}") from None
    params = tuple(read_param(t, path) for t in data.get("param", ()))
    own = {"upstream", "description", "runner", "table", "report", "param"}
    return RunKind(name=name, description=data["description"], params=params, runner=data["runner"],
                   table=data["table"], report=tuple(data.get("report", ())), spec_file=path,
                   upstream={k: v for k, v in data.items() if k not in own})


def _with_range(table: dict, where: Path) -> dict:
    """A ``[[param]]`` with ``range_of = "MODULE.PARAM"``: that module parameter's bounds and unit
    (a tracer's option that ends up as the module's value)."""
    if "range_of" not in table:
        return table
    table = dict(table)
    module, _, name = str(table.pop("range_of")).partition(".")
    try:
        source = module_spec(module).param(name)
    except WqkitError as exc:
        raise WqkitError(f"{where}: range_of: {exc}") from None
    return {"min": source.min, "max": source.max, "unit": source.unit, **table}


def tracer_dirs() -> list[Path]:
    """wqkit's tracers, then those of ``$WQKIT_TRACERS`` (DIR[:DIR...])."""
    return [TRACERS_DIR, *(Path(d) for d in os.environ.get(TRACERS_ENV, "").split(":") if d)]


def run_kinds() -> dict[str, RunKind]:
    """Every run kind, by name: the module experiments, then the tracers."""
    return _run_kinds(os.environ.get(TRACERS_ENV, ""), tuple(experiments()))


@lru_cache(maxsize=8)
def _run_kinds(env: str, names: tuple[str, ...]) -> dict[str, RunKind]:
    found: dict[str, RunKind] = {}
    for exp in experiments().values():
        found[exp.name] = RunKind(exp.name, exp.description, exp.options, EXPERIMENT_RUNNER,
                                  report=exp.report, spec_file=exp.module_spec.spec_file, experiment=exp)
    for path in sorted(UPSTREAM_DIR.glob("*.toml")):
        kind = read_upstream(path)
        if kind.name in found:
            raise WqkitError(f"{path}: run kind {kind.name} is already declared in {found[kind.name].spec_file}")
        found[kind.name] = kind
    for directory in tracer_dirs():
        if not directory.is_dir():
            raise WqkitError(f"{TRACERS_ENV}: {directory} is not a directory")
        for path in sorted(directory.glob("*.toml")):
            if path == TRACER_PARAMS:
                continue
            kind = read_tracer(path)
            if kind.name in found:
                other = found[kind.name].spec_file
                raise WqkitError(f"{path}: run kind {kind.name} is already declared in {other}")
            found[kind.name] = kind
    return found


def upstream_kinds() -> dict[str, RunKind]:
    """The kinds that run a module of the kernel's own sources, by name."""
    return {name: kind for name, kind in run_kinds().items() if kind.upstream}


def tracers() -> dict[str, RunKind]:
    """The tracer kinds, by their ``wqkit trace`` command."""
    return {kind.command: kind for kind in run_kinds().values() if kind.command}


def run_kind(name: str) -> RunKind:
    """The run kind called ``name``, or a one-line error listing them."""
    try:
        return run_kinds()[name]
    except KeyError:
        raise WqkitError(f"unknown experiment or tracer {name!r} (known: {', '.join(run_kinds())})") from None


def tracer_param(name: str) -> Param:
    """A parameter every tracer may take, as tracer_params.toml declares it."""
    return read_param({"shared": name}, TRACER_PARAMS, TRACER_PARAMS)
