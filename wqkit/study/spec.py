"""A study is a file: experiments, factors and their levels, its replication, a seed.

    name = "flags_latency"
    seed = 7
    boots = 6                         # per level: each block of runs in a fresh boot
    runs_per_boot = 2                 # each point's runs in one boot

    [[experiment]]
    name = "insert_exec"
    params = { nr = 2000 }            # fixed for every point
    [[experiment]]                    # any run kind: a tracer around its load too
    name = "trace_latency"
    params = { during = "insert_exec", engine = "bcc", nr = 2000 }

    [factors]
    kernel = ["stock", "6.1"]         # lab kernels (wqkit run --kernel)
    wq_flags = ["percpu", "unbound"]  # any parameter of the experiments
    cpus = [2]                        # lab CPUs
    replicate = ["A", "B"]            # changes nothing but the boots: an A/A check

The grid is every combination of the factors' levels for each experiment
(a factor that is a parameter applies to the experiments that declare it);
each combination is a point. An ``[[experiment]]`` names any run kind
(wqkit.runs.kinds: a module experiment, or a tracer with its load's parameters).
The boot is the unit of replication: the
points that share a lab (kernel, CPUs, replicate) form a boot group, and
each of the ``boots`` blocks boots every group afresh and runs each of its
points ``runs_per_boot`` times in that boot. So every level of a lab factor
spans ``boots`` boots of its own, and a factor that is a parameter is
compared within boots. ``repetitions`` (the older spelling) means ``boots``
with one run per boot. Every point is checked against its experiment's
declaration before anything boots.
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
from wqkit.lab.topology import Topology, parse_topology
from wqkit.lab.vm import DEFAULT_CPUS, DEFAULT_MEMORY, check_cpus
from wqkit.runs.kinds import RunKind, run_kind
from wqkit.runs.lifecycle import RUN_TIMEOUT_S

#: Factors that are lab settings, not experiment parameters: each level boots a lab of its own
#: (``replicate`` changes nothing else: the same lab twice is an A/A check). A study spells one
#: ``lab.NAME``, or ``NAME`` alone where no experiment of the study has a parameter of that name
#: (kserver's ``cpus`` is its task CPUs: ``cpus`` is then that parameter, ``lab.cpus`` the lab's).
LAB_FACTORS = ("kernel", "cpus", "replicate", "topology")
LAB_PREFIX = "lab."
#: Study settings besides factors and experiments, with their defaults.
SETTINGS = {"name": None, "seed": 0, "boots": 5, "runs_per_boot": 1, "timeout": RUN_TIMEOUT_S, "memory": DEFAULT_MEMORY}
#: The older spelling of ``boots`` (one run per boot), still read.
OLD_BOOTS = "repetitions"
#: The range of ``boots`` (an interval needs two) and of ``runs_per_boot``.
BOOTS_RANGE = (2, 1000)
RUNS_PER_BOOT_RANGE = (1, 1000)


@dataclass(frozen=True)
class Point:
    """One configuration of the grid: an experiment, its parameters and its lab."""

    experiment: str
    #: The factors' levels at this point, by factor name (as the study file spells them).
    levels: Mapping[str, object]
    #: The experiment's parameters: the study's fixed ones and this point's levels.
    params: Mapping[str, object]
    kernel: str = "stock"
    cpus: int = DEFAULT_CPUS
    shape: str | None = None
    #: Which of ``levels`` are lab settings (as the study file spells them).
    lab_factors: tuple[str, ...] = ()
    #: The lab machine's shape (wqkit.lab.topology), when a factor sets one.
    topology: str | None = None

    @property
    def key(self) -> str:
        """A stable name, unique in its study: ``insert_exec|kernel=6.1|wq_flags=unbound``."""
        return "|".join([self.experiment, *(f"{k}={level_text(v)}" for k, v in sorted(self.levels.items()))])

    @property
    def lab(self) -> str:
        """The point's boot group: its lab factors' levels (``kernel=6.1|replicate=A``); the
        points of one group run in the same boots."""
        return "|".join(f"{k}={level_text(v)}" for k, v in sorted(self.levels.items()) if k in self.lab_factors)

    @property
    def identity(self) -> dict:
        """Everything that decides what the point runs: its key, every parameter, its graph."""
        identity = {"key": self.key, "params": dict(self.params), "kernel": self.kernel, "cpus": self.cpus,
                    "shape": self.shape}
        return identity | ({"topology": self.topology} if self.topology else {})


def level_text(value: object) -> str:
    """A factor's level as a study file spells it: text as it is, else its JSON (``true``, ``2``)."""
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class Study:
    """A study file, read and checked."""

    name: str
    path: Path
    seed: int
    boots: int
    runs_per_boot: int
    timeout: float
    memory: str
    factors: Mapping[str, tuple]
    experiments: tuple[Mapping[str, object], ...]
    points: tuple[Point, ...] = field(repr=False)

    @property
    def digest(self) -> str:
        """What identifies the study's runs: every point's parameters and graph, the seed and
        the replication. A resumed study must have the same."""
        text = json.dumps([[p.identity for p in self.points], self.seed, self.boots, self.runs_per_boot],
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def runs(self) -> int:
        return len(self.points) * self.boots * self.runs_per_boot

    @property
    def labs(self) -> list[str]:
        """The boot groups, in the order of the points."""
        return list(dict.fromkeys(p.lab for p in self.points))


def read_study(path: Path) -> Study:
    """The study in ``path``, its grid expanded and every point checked, or a one-line error."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WqkitError(f"{path}: not a study file ({exc})") from None
    unknown = data.keys() - SETTINGS.keys() - {"experiment", "factors", OLD_BOOTS}
    if unknown:
        known = ", ".join([*SETTINGS, "experiment", "factors"])
        raise WqkitError(f"{path}: unknown keys {sorted(unknown)} (known: {known})")
    settings = {key: data.get(key, default) for key, default in SETTINGS.items()}
    if OLD_BOOTS in data:
        if "boots" in data or "runs_per_boot" in data:
            raise WqkitError(f"{path}: give boots and runs_per_boot, or repetitions (the older spelling of "
                             "boots, one run each), not both")
        settings["boots"] = data[OLD_BOOTS]
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
    for key, (low, high) in (("boots", BOOTS_RANGE), ("runs_per_boot", RUNS_PER_BOOT_RANGE)):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            spelled = OLD_BOOTS if key == "boots" and OLD_BOOTS in data else key
            raise WqkitError(f"{path}: {spelled}={value!r} is out of range: a whole number from {low} to {high}"
                             + (" (an interval needs two boots a level)" if key == "boots" else ""))
    kinds = [run_kind(str(table["name"])) for table in exps]
    declared = set().union(*(kind.options(dict(t.get("params", {}))) for kind, t in zip(kinds, exps)))
    lab = {name: lab_setting(path, name, declared) for name in factors}
    for name in factors:
        if lab[name] is None and name not in declared:
            raise WqkitError(f"{path}: factor {name} is neither {' nor '.join(LAB_FACTORS)} (lab.NAME) nor a "
                             f"parameter of its experiments (theirs: {', '.join(sorted(declared))})")
    lab_factors = {name: setting for name, setting in lab.items() if setting is not None}
    points = tuple(point for table, kind in zip(exps, kinds)
                   for point in _points(path, table, kind, factors, lab_factors))
    seen: dict[str, Mapping] = {}
    for point in points:
        if point.key in seen:
            differ = sorted(k for k in point.params.keys() | seen[point.key].keys()
                            if point.params.get(k) != seen[point.key].get(k))
            raise WqkitError(f"{path}: two [[experiment]] tables make the same point {point.key}"
                             + (f" (they differ in {', '.join(differ)}: make that a factor instead)" if differ else ""))
        seen[point.key] = point.params
    return Study(name=settings["name"] or Path(path).stem, path=Path(path), seed=int(settings["seed"]),
                 boots=settings["boots"], runs_per_boot=settings["runs_per_boot"], timeout=float(settings["timeout"]),
                 memory=str(settings["memory"]), factors={k: tuple(v) for k, v in factors.items()},
                 experiments=tuple(exps), points=points)


def lab_setting(path: Path, factor: str, declared: set[str]) -> str | None:
    """The lab setting a factor sets (``kernel``, ``cpus``, ``replicate``), or None for a parameter."""
    if factor.startswith(LAB_PREFIX):
        setting = factor.removeprefix(LAB_PREFIX)
        if setting not in LAB_FACTORS:
            raise WqkitError(f"{path}: factor {factor}: the lab's factors are "
                             f"{', '.join(LAB_PREFIX + f for f in LAB_FACTORS)}")
        return setting
    return factor if factor in LAB_FACTORS and factor not in declared else None


def _points(path: Path, table: Mapping[str, object], exp: RunKind, factors: Mapping[str, list],
            lab_factors: Mapping[str, str]) -> list[Point]:
    extra = table.keys() - {"name", "params", "shape"}
    if extra:
        raise WqkitError(f"{path}: experiment {exp.name}: unknown keys {sorted(extra)} (known: name, params, shape)")
    fixed = dict(table.get("params", {}))
    options = exp.options(fixed)
    mine = {name: levels for name, levels in factors.items() if name in options or name in lab_factors}
    shape = table.get("shape")
    graph = exp.takes_graph(fixed)
    if graph != (shape is not None):
        raise WqkitError(f"{path}: experiment {exp.name}: " + ("give its task graph as shape = \"fork-join:...\""
                                                              if graph else "takes no shape"))
    points = []
    for combo in product(*mine.values()) if mine else [()]:
        levels = dict(zip(mine, combo))
        params = fixed | {k: v for k, v in levels.items() if k not in lab_factors}
        settings = {lab_factors[k]: v for k, v in levels.items() if k in lab_factors}
        topology = _topology(path, settings)
        point = Point(exp.name, levels, params, kernel=str(settings.get("kernel", "stock")),
                      cpus=topology.cpus if topology else settings.get("cpus", DEFAULT_CPUS), shape=shape,
                      lab_factors=tuple(k for k in levels if k in lab_factors),
                      topology=topology.text if topology else None)
        _check(path, exp, point)
        points.append(point)
    return points


def _topology(path: Path, settings: Mapping[str, object]) -> Topology | None:
    """A point's lab machine shape, or a one-line error (a topology sets the CPUs: not both)."""
    if "topology" not in settings:
        return None
    if "cpus" in settings:
        raise WqkitError(f"{path}: a topology sets the lab's CPUs: give cpus or topology, not both")
    try:
        return parse_topology(str(settings["topology"]))
    except WqkitError as exc:
        raise WqkitError(f"{path}: {exc}") from None


def _check(path: Path, exp: RunKind, point: Point) -> None:
    """The point's parameters, lab CPUs and graph as its experiment takes them, or a one-line
    error naming the point."""
    try:
        exp.split(point.params)
        check_cpus(point.cpus)
        if point.shape is not None:
            repeat = point.params.get("repeat")
            parse_shape(point.shape).validate(repeat=None if repeat is None else int(str(repeat), 0))
    except WqkitError as exc:
        raise WqkitError(f"{path}: point {point.key}: {exc}") from None


def check_kernels(study: Study) -> None:
    """Every kernel level names a lab kernel this host has, and each point's kernel takes its
    parameters (a scope newer than the kernel), or a one-line error naming it."""
    from wqkit.lab.choose import resolve_kernel

    releases = {}
    for kernel in sorted({p.kernel for p in study.points}):
        try:
            releases[kernel] = resolve_kernel(kernel).release
        except WqkitError as exc:
            raise WqkitError(f"{study.path}: kernel level {kernel!r}: {exc}") from None
    for point in study.points:
        kind = run_kind(point.experiment)
        own, load = kind.split(point.params)
        try:
            kind.check_release(own, load, releases[point.kernel])
        except WqkitError as exc:
            raise WqkitError(f"{study.path}: point {point.key}: {exc}") from None
