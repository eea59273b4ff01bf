"""Runs: what every kind of run is declared as, how one is recorded, and where it came from.

:mod:`~wqkit.runs.spec` reads the declarations (a module experiment's TOML
beside its C file), :mod:`~wqkit.runs.cgen` generates the C they imply,
:mod:`~wqkit.runs.kinds` is the registry of run kinds (each module
experiment, each tracer declared in ``wqkit/trace/*.toml``),
:mod:`~wqkit.runs.lifecycle` makes a run directory and marks it ok or failed,
:mod:`~wqkit.runs.provenance` records where a measurement came from.

Only :mod:`wqkit.runs.spec` is imported here: the module build runs
:mod:`wqkit.runs.cgen` with the standard library alone.
"""

from wqkit.runs.spec import Experiment, ModuleSpec, Param, experiment, experiments, module_spec, modules

__all__ = ["Experiment", "ModuleSpec", "Param", "experiment", "experiments", "module_spec", "modules"]
