"""Experiments: their declarations (spec), the modules that run them (kmod), and runs.

Only :mod:`wqkit.experiments.spec` is imported here: the module build runs
:mod:`wqkit.experiments.cgen` with the standard library alone.
"""

from wqkit.experiments.spec import Experiment, ModuleSpec, Param, experiment, experiments, module_spec, modules

__all__ = ["Experiment", "ModuleSpec", "Param", "experiment", "experiments", "module_spec", "modules"]
