"""A study is a file: experiments, factors and their levels, repetitions, a seed.

    name = "flags_latency"
    seed = 7
    repetitions = 5

    [[experiment]]
    name = "insert_exec"
    params = { nr = 2000 }            # fixed for every point

    [factors]
    kernel = ["stock", "6.1"]         # lab kernels (wqkit run --kernel)
    wq_flags = ["percpu", "unbound"]  # any parameter of the experiments
    cpus = [2]                        # lab CPUs

The grid is every combination of the factors' levels for each experiment
(a factor that is a parameter applies to the experiments that declare it);
each combination is a point, run ``repetitions`` times. Every point is
checked against its experiment's declaration before anything boots.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Mapping

from wqkit.errors import WqkitError
from wqkit.experiments.graph import parse_shape
from wqkit.study.kinds import Kind, study_kind

#: Factors that are lab settings, not experiment parameters.
LAB_FACTORS = ("kernel", "cpus")
#: Study settings besides factors and experiments, with their defaults.
SETTINGS = {"name": None, "seed": 0, "repetitions": 3, "timeout": 1800.0, "memory": "2G"}


@dataclass(frozen=True)
class Point:
    """One configuration of the grid: an experiment, its parameters and its lab."""

    experiment: str
    #: The factors' levels at this point, by factor name (as the study file spells them).
    levels: Mapping[str, object]
    #: The experiment's parameters: the study's fixed ones and this point's levels.
    params: Mapping[str, object]
    kernel: str = "stock"
    cpus: int = 2
    shape: str | None = None

    @property
    def key(self) -> str:
        """A stable name, unique in its study: ``insert_exec|kernel=6.1|wq_flags=unbound``."""
        return "|".join([self.experiment, *(f"{k}={level_text(v)}" for k, v in sorted(self.levels.items()))])


def level_text(value: object) -> str:
    """A factor's level as a study file spells it: text as it is, else its JSON (``true``, ``2``)."""
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class Study:
    """A study file, read and checked."""

    name: str
    path: Path
    seed: int
    repetitions: int
    timeout: float
    memory: str
    factors: Mapping[str, tuple]
    experiments: tuple[Mapping[str, object], ...]
    points: tuple[Point, ...] = field(repr=False)

    @property
    def digest(self) -> str:
        """What identifies the grid: a resumed study must have the same."""
        text = json.dumps([p.key for p in self.points] + [self.seed, self.repetitions])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def runs(self) -> int:
        return len(self.points) * self.repetitions


def read_study(path: Path) -> Study:
    """The study in ``path``, its grid expanded and every point checked, or a one-line error."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WqkitError(f"{path}: not a study file ({exc})") from None
    unknown = data.keys() - SETTINGS.keys() - {"experiment", "factors"}
    if unknown:
        raise WqkitError(f"{path}: unknown keys {sorted(unknown)} (known: {', '.join([*SETTINGS, 'experiment', 'factors'])})")
    settings = {key: data.get(key, default) for key, default in SETTINGS.items()}
    exps = data.get("experiment")
    if isinstance(exps, dict):
        exps = [exps]
    if not exps or not all(isinstance(e, dict) and "name" in e for e in exps):
        raise WqkitError(f"{path}: give at least one [[experiment]] with its name")
    factors = data.get("factors", {})
    for name, levels in factors.items():
        if not isinstance(levels, list) or not levels:
            raise WqkitError(f"{path}: factor {name}: give its levels as a non-empty list")
        if len(set(map(level_text, levels))) != len(levels):
            raise WqkitError(f"{path}: factor {name}: a level is given twice")
    if not isinstance(settings["repetitions"], int) or settings["repetitions"] < 1:
        raise WqkitError(f"{path}: repetitions must be a positive integer")
    kinds = [study_kind(str(table["name"]), dict(table.get("params", {}))) for table in exps]
    declared = set().union(*(kind.options for kind in kinds))
    for name in factors:
        if name not in LAB_FACTORS and name not in declared:
            raise WqkitError(f"{path}: factor {name} is neither {' nor '.join(LAB_FACTORS)} nor a parameter of "
                             f"its experiments (theirs: {', '.join(sorted(declared))})")
    points = tuple(point for table, kind in zip(exps, kinds) for point in _points(path, table, kind, factors))
    return Study(name=settings["name"] or Path(path).stem, path=Path(path), seed=int(settings["seed"]),
                 repetitions=settings["repetitions"], timeout=float(settings["timeout"]),
                 memory=str(settings["memory"]), factors={k: tuple(v) for k, v in factors.items()},
                 experiments=tuple(exps), points=points)


def _points(path: Path, table: Mapping[str, object], exp: Kind, factors: Mapping[str, list]) -> list[Point]:
    extra = table.keys() - {"name", "params", "shape"}
    if extra:
        raise WqkitError(f"{path}: experiment {exp.name}: unknown keys {sorted(extra)} (known: name, params, shape)")
    fixed = dict(table.get("params", {}))
    mine = {name: levels for name, levels in factors.items() if name in exp.options or name in LAB_FACTORS}
    shape = table.get("shape")
    if exp.graph != (shape is not None):
        raise WqkitError(f"{path}: experiment {exp.name}: " + ("give its task graph as shape = \"fork-join:...\""
                                                              if exp.graph else "takes no shape"))
    points = []
    for combo in product(*mine.values()) if mine else [()]:
        levels = dict(zip(mine, combo))
        params = fixed | {k: v for k, v in levels.items() if k not in LAB_FACTORS}
        point = Point(exp.name, levels, params, kernel=str(levels.get("kernel", "stock")),
                      cpus=levels.get("cpus", 2), shape=shape)
        _check(path, exp, point)
        points.append(point)
    return points


def _check(path: Path, exp: Kind, point: Point) -> None:
    """The point's parameters, lab CPUs and graph as its experiment takes them, or a one-line
    error naming the point."""
    try:
        exp.check(point.params)
        if not isinstance(point.cpus, int) or isinstance(point.cpus, bool) or not 1 <= point.cpus <= 64:
            raise WqkitError(f"cpus={point.cpus!r} is not a number of lab CPUs (1..64)")
        if point.shape is not None:
            repeat = point.params.get("repeat")
            parse_shape(point.shape).validate(repeat=None if repeat is None else int(str(repeat), 0))
    except WqkitError as exc:
        raise WqkitError(f"{path}: point {point.key}: {exc}") from None


def check_kernels(study: Study) -> None:
    """Every kernel level names a lab kernel this host has, or a one-line error naming it."""
    from wqkit.lab.choose import resolve_kernel

    for kernel in sorted({p.kernel for p in study.points}):
        try:
            resolve_kernel(kernel)
        except WqkitError as exc:
            raise WqkitError(f"{study.path}: kernel level {kernel!r}: {exc}") from None
