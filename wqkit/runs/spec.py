"""One declaration per module and experiment: the TOML file beside its C source.

Every module of ``modules/`` (and every experiment found through
``WQKIT_EXPERIMENTS`` or the ``wqkit.experiments`` entry point group) is
declared once, in ``NAME.toml`` beside ``NAME.c``: its module name, a
one-line description, each parameter (name, type, default, range, unit,
help, the value that means "any"), and, for an experiment, what its samples
measure and how it runs. Everything reads that declaration: the C module's
parameters and range checks (a header the build generates, wqkit.runs.cgen),
``wqkit run``'s options and help, the checks before ``insmod``, notebooks'
parameters, run labels and the tracers' loads.

This module needs only the standard library: the module build runs it
without wqkit's dependencies.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Mapping

from wqkit.errors import WqkitError
from wqkit.paths import MODULES_DIR

#: How a user says "any CPU" (or "any value") for a parameter that declares one.
ANY = "any"
#: The parameter types: load-time values (uint, int, bool, flags, cpulist), values the
#: module writes for the host to read (output), and write-only triggers (run: write N; action);
#: one of declared choices (a string), and those only wqkit's side of a run takes (a tracer's):
#: a float, a list of names, an experiment's name ("" for none).
HOST_ONLY = ("float", "names", "experiment")
TYPES = ("uint", "int", "bool", "flags", "cpulist", "choice", "output", "run", "action", *HOST_ONLY)
SETTABLE = ("uint", "int", "bool", "flags", "cpulist", "choice", *HOST_ONLY)
#: Objects a module links besides its source (modules/Kbuild's wqkit-common and friends).
LINKS = {"recorder": ("wqkit_samples.o", "wqkit_experiment.o"), "run_param": ("wqkit_run_param.o",)}
#: The entry point group a package names its experiment directories in.
ENTRY_POINT_GROUP = "wqkit.experiments"
ENV = "WQKIT_EXPERIMENTS"
#: The report of an experiment whose samples are intervals, unless it declares its own.
DEFAULT_REPORT = ("provenance", "summary", "distribution", "run_order", "per_cpu", "outliers")


def wq_flag_bits() -> dict[str, int]:
    """wqkit's own workqueue flag bits by name, as ``wq_flags`` declares them in shared_params.toml
    (the modules' WQKIT_WQ_* come from the same declaration: cgen's wqkit_flags.h)."""
    return dict(_shared_params(SHARED_PARAMS)["wq_flags"]["bits"])


def parse_wq_flags(text: str | int) -> int:
    """``"unbound,highpri"`` (or ``"percpu"``/``""``) to wqkit's flag bits."""
    if isinstance(text, int):
        return text
    if text.strip().lstrip("-").isdigit() or text.strip().lower().startswith("0x"):
        return int(text, 0)
    bits = 0
    for name in filter(None, (part.strip().lower() for part in text.split(","))):
        if name == "percpu":
            continue
        known = wq_flag_bits()
        if name not in known:
            raise WqkitError(f"unknown workqueue flag {name!r} (known: percpu, {', '.join(known)})")
        bits |= known[name]
    return bits


def release_tuple(release: str) -> tuple[int, ...]:
    """``"6.12.95+deb12-amd64"`` to (6, 12): the version a kernel feature arrived in."""
    match = re.match(r"(\d+)\.(\d+)", release)
    if not match:
        raise WqkitError(f"{release!r} is not a kernel release")
    return int(match[1]), int(match[2])


def flag_names(bits: int) -> str:
    """wqkit's flag bits as names (``percpu`` for none)."""
    return ",".join(name for name, bit in wq_flag_bits().items() if bits & bit) or "percpu"


@dataclass(frozen=True)
class Param:
    """One module parameter, declared once."""

    name: str
    type: str
    help: str
    default: int | str | None = None
    min: int | None = None
    max: int | None = None
    unit: str = ""
    #: The value that means "any" (e.g. -1 for a CPU), which users spell ``any``.
    any: int | str | None = None
    #: The ``wqkit run`` option (default: --NAME with dashes); without dashes, a positional
    #: argument of that name (a ``names`` list).
    flag: str | None = None
    #: A ``choice``'s values; a ``names`` list's longest name.
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    #: A ``flags`` parameter's bits by name (its range is every combination of them).
    bits: tuple[tuple[str, int], ...] = ()
    #: What the value names, where wqkit checks it against the target: ``cpu`` (one of its CPUs).
    role: str = ""
    #: The first Linux release that takes a value: ``(("*", "6.6"),)`` for any but the default,
    #: or per choice or flag bit (``(("cache_shard", "7.1"),)``). Checked before boot.
    since: tuple[tuple[str, str], ...] = ()
    #: A flag bit another parameter must have when this one is not its default
    #: (``(("wq_flags", "unbound"),)``): checked by wqkit and by the module.
    requires: tuple[tuple[str, str], ...] = ()
    #: A flag bit another parameter must not have when this one is not its default (max_active
    #: and ``bh``: a BH workqueue has no max_active).
    excludes: tuple[tuple[str, str], ...] = ()
    #: A ``flags`` parameter's bits that exclude each other (``bh`` and ``unbound``).
    exclusive: tuple[tuple[str, str], ...] = ()

    @property
    def settable(self) -> bool:
        """Whether it is given at load time (insmod), not written or read later."""
        return self.type in SETTABLE

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def positional(self) -> bool:
        return bool(self.flag) and not self.flag.startswith("-")

    @property
    def range_text(self) -> str:
        if self.type == "cpulist":
            return f"at most {self.max} CPUs"
        if self.type == "choice":
            return "|".join(self.choices)
        if self.type == "experiment":
            return "an experiment's name"
        if self.type == "names":
            return f"at most {self.max} names of 1..{self.max_length} characters"
        if self.type == "flags":
            return "percpu or " + ",".join(name for name, _ in self.bits)
        return "" if self.min is None else f"{self.min}..{self.max}"

    def describe(self) -> str:
        """The help line, with unit, range, default and "any": the same in modinfo and ``--help``."""
        facts = [f"{self.range_text}{' ' + self.unit if self.unit and self.type != 'cpulist' else ''}"]
        if self.settable and self.default is not None:
            shown = flag_names(int(self.default)) if self.type == "flags" else \
                int(self.default) if self.type == "bool" else self.default
            facts.append(f"default {shown!r}" if isinstance(shown, str) else f"default {shown}")
        if self.any is not None:
            facts.append(f"{ANY} = {self.any!r}" if isinstance(self.any, str) else f"{ANY} = {self.any}")
        facts = [f for f in facts if f.strip()]
        return f"{self.help} ({', '.join(facts)})" if facts else self.help

    def needs_release(self, value: object) -> tuple[tuple[int, ...], str] | None:
        """The first release that takes ``value`` and what needs it (``affinity_scope=cache_shard``),
        or None when every kernel takes it."""
        if value == self.default or not self.since:
            return None
        named = {"*"} | ({str(value)} if self.type == "choice" else
                         {n for n, bit in self.bits if int(value) & bit} if self.type == "flags" else set())
        needed = [(release_tuple(version), name) for name, version in self.since if name in named]
        if not needed:
            return None
        version, name = max(needed)
        return version, f"{self.name}={flag_names(int(value)) if self.type == 'flags' else value}" + \
            (f" ({name})" if self.type == "flags" and name != "*" else "")

    def check(self, module: str, value: object) -> int | str | float | tuple[str, ...]:
        """The value as the module takes it, or a one-line error; ``any`` is the declared any."""
        if isinstance(value, str) and value.strip().lower() == ANY and self.any is not None:
            value = self.any
        if self.type in HOST_ONLY or self.type == "choice":
            return self._check_host(module, value)
        if self.type == "cpulist":
            text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            items = [item.strip() for item in text.split(",") if item.strip()]
            if len(items) > self.max or not all(item.isdigit() and int(item) < 4096 for item in items):
                raise WqkitError(f"{module}: {self.name}={text!r} is not a list of at most {self.max} CPU numbers")
            return ",".join(items)
        if self.type == "flags" and isinstance(value, str):
            value = parse_wq_flags(value)
        if self.type == "flags" and isinstance(value, int):
            self._check_bits(module, value)
        if self.type == "bool" and isinstance(value, bool):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise WqkitError(f"{module}: {self.name}={value!r} is not an integer")
        try:
            number = int(value, 0) if isinstance(value, str) else value
        except ValueError:
            raise WqkitError(f"{module}: {self.name}={value!r} is not an integer") from None
        low, high = (0, 1) if self.type == "bool" else (self.min, self.max)
        if not low <= number <= high:
            raise WqkitError(f"{module}: {self.name}={number} is out of range ({low}..{high})")
        return number

    def _check_bits(self, module: str, value: int) -> None:
        """A one-line error for a bit this module does not take, or two that exclude each other."""
        taken = dict(self.bits)
        extra = value & ~sum(taken.values()) if value >= 0 else 0
        if extra and extra <= sum(wq_flag_bits().values()):
            raise WqkitError(f"{module}: {self.name}={flag_names(extra)} is not a flag this module takes "
                             f"({self.range_text})")
        for first, second in self.exclusive:
            if first in taken and second in taken and value & taken[first] and value & taken[second]:
                raise WqkitError(f"{module}: {self.name}: {first} and {second} exclude each other")

    def _check_host(self, owner: str, value: object) -> str | float | tuple[str, ...]:
        if self.type == "experiment":
            return experiment(str(value)).name if value else ""
        if self.type == "choice":
            if value not in self.choices:
                raise WqkitError(f"{owner}: {self.name}={value!r} is not one of {', '.join(self.choices)}")
            return str(value)
        if self.type == "names":
            names = tuple(value.split(",") if isinstance(value, str) else value) if value else ()
            bad = [n for n in names if not isinstance(n, str) or not 1 <= len(n) <= (self.max_length or 0)
                   or any(c in n for c in ",\"\\\n") or n in ("*", "-")]
            if bad or len(names) > (self.max or 0):
                raise WqkitError(f"{owner}: {self.name}={value!r}: give {self.range_text}")
            return names
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if not self.min <= number <= self.max:
            raise WqkitError(f"{owner}: {self.name}={value!r} is not a number in {self.min:g}..{self.max:g}")
        return number


@dataclass(frozen=True)
class Experiment:
    """What a module's run measures, and how wqkit runs it."""

    name: str
    module_spec: ModuleSpec = field(repr=False)
    #: What a sample's interval (t1 - t0) measures, for tables and titles.
    measures: str
    #: The parameter that sets how many samples are expected (read back from the kernel).
    count_param: str
    #: Whether a sample is queue → execution of one work item, items queued one after the
    #: other: then the queue latency tracer's k-th item is sample k, and the two compare.
    queue_to_execution: bool = False
    #: Whether its samples are a timestamp pair whose own cost is calibrated and subtracted.
    calibrated: bool = False
    #: The parameter that, set to 1, makes this experiment measure the timestamp pair itself: it
    #: then calibrates every calibrated experiment (one experiment declares it).
    calibrates: str | None = None
    #: Whether it runs a task graph (wqkit.experiments.graph), written to the module after loading.
    graph: bool = False
    #: Its analysis: the report sections a notebook shows, in order (wqkit.notebook.REPORT_SECTIONS).
    report: tuple[str, ...] = DEFAULT_REPORT

    @property
    def module(self) -> str:
        return self.module_spec.name

    @property
    def description(self) -> str:
        return self.module_spec.description

    @property
    def options(self) -> tuple[Param, ...]:
        """The parameters ``wqkit run`` offers: every settable one."""
        return tuple(p for p in self.module_spec.params if p.settable)

    @property
    def debugfs_dir(self) -> str:
        return f"/sys/kernel/debug/wqkit/{self.name}"

    def values(self, given: Mapping[str, object]) -> dict[str, int | str]:
        """Checked module parameters from values keyed by parameter name, or by the name of its
        ``wqkit run`` option where that differs (``flags`` for ``wq_flags``: what notebooks and
        papermill command lines used to say) (None: not given, the module's default); a
        one-line error for an unknown name, a parameter given twice or a bad value."""
        spelled = {p.cli_flag.removeprefix("--").replace("-", "_"): p.name for p in self.module_spec.params}
        named: dict[str, object] = {}
        for key, value in given.items():
            name = key if any(p.name == key for p in self.module_spec.params) else spelled.get(key, key)
            if value is not None and named.get(name) is not None:
                raise WqkitError(f"{self.name}: {name} is given twice ({key} is another spelling of it)")
            if value is not None or name not in named:
                named[name] = value
        return self.module_spec.checked(named)


@dataclass(frozen=True)
class ModuleSpec:
    """One module: its source, its parameters and, for an experiment, what it measures."""

    name: str
    description: str
    spec_file: Path
    source: str
    params: tuple[Param, ...]
    links: tuple[str, ...] = ()
    #: Named constants the module and wqkit both obey (e.g. a task graph's size limits):
    #: ``WQKIT_LIMIT_<NAME>`` in the generated header.
    limits: Mapping[str, int] = field(default_factory=dict)
    experiment: Experiment | None = field(default=None, compare=False)

    @property
    def directory(self) -> Path:
        return self.spec_file.parent

    @property
    def header(self) -> str:
        """The generated header its source includes."""
        return f"{Path(self.source).stem}_params.h"

    @property
    def external(self) -> bool:
        return self.directory.resolve() != MODULES_DIR.resolve()

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        known = ", ".join(p.name for p in self.params if p.settable) or "none"
        raise WqkitError(f"{self.name}: unknown parameter {name!r} (known: {known})")

    def checked(self, given: Mapping[str, object]) -> dict[str, int | str]:
        """Values keyed by parameter name, checked; None (not given) is left out."""
        values = {}
        for name, value in given.items():
            param = self.param(name)
            if not param.settable:
                raise WqkitError(f"{self.name}: {name} is not set at load time")
            if value is not None:
                values[name] = param.check(self.name, value)
        self._check_requires(values)
        return values

    def _check_requires(self, values: Mapping[str, object]) -> None:
        """A one-line error when a parameter away from its default lacks the flag it requires, or
        has one it excludes."""
        for param in self.params:
            value = values.get(param.name, param.default)
            if value == param.default:
                continue
            for (other, bit), needed in [(pair, True) for pair in param.requires] + \
                    [(pair, False) for pair in param.excludes]:
                bits = dict(self.param(other).bits)
                if bit not in bits:
                    continue        # a flag this module does not take
                flags = int(values.get(other, self.param(other).default))   # type: ignore[arg-type]
                if bool(flags & bits[bit]) != needed:
                    raise WqkitError(f"{self.name}: {param.name}={value} " +
                                     (f"needs {other}={bit}" if needed else f"and {other}={bit} exclude each other"))

    def check_release(self, values: Mapping[str, object], release: str) -> None:
        """A one-line error, before anything boots, when kernel ``release`` does not take a value."""
        have = release_tuple(release)
        for param in self.params:
            needed = param.needs_release(values.get(param.name, param.default))
            if needed is not None and have < needed[0]:
                raise WqkitError(f"{self.name}: {needed[1]} needs Linux {'.'.join(map(str, needed[0]))} or "
                                 f"later; the target's kernel is {release}")

    def insmod_args(self, values: Mapping[str, object]) -> list[str]:
        """Validated ``name=value`` arguments for insmod, or a one-line error."""
        return [f"{name}={value}" for name, value in self.checked(values).items()]


#: Parameters several modules take, declared once (a module's ``[[param]]`` with ``shared = NAME``).
SHARED_PARAMS = MODULES_DIR / "shared_params.toml"


@lru_cache(maxsize=4)
def _shared_params(path: Path) -> dict[str, dict]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WqkitError(f"{path}: not a parameter file ({exc})") from None


def _with_shared(table: dict, where: Path, shared_file: Path) -> dict:
    """A ``[[param]]`` table with its ``shared`` declaration filled in (its own keys override)."""
    if "shared" not in table:
        return table
    name = table.pop("shared")
    shared = _shared_params(shared_file)
    if name not in shared:
        raise WqkitError(f"{where}: shared parameter {name!r} is not in {shared_file.name} "
                         f"(it has {', '.join(shared)})")
    return {"name": name, **shared[name], **table}


def read_param(table: dict, where: Path, shared_file: Path = SHARED_PARAMS) -> Param:
    """One ``[[param]]`` table of ``where``, checked (``shared = NAME`` taken from ``shared_file``)."""
    table = _with_shared(dict(table), where, shared_file)
    if not {"name", "type", "help"} <= table.keys():
        raise WqkitError(f"{where}: parameter {table.get('name')!r}: give its name, type and help")
    kind = table.get("type")
    if kind not in TYPES:
        raise WqkitError(f"{where}: parameter {table.get('name')!r}: type must be one of {', '.join(TYPES)}")
    for key in ("choices", "default"):
        if isinstance(table.get(key), list):
            table[key] = tuple(table[key])
    for key in ("since", "requires", "excludes"):
        if isinstance(table.get(key), str):
            table[key] = {"*": table[key]}
        if isinstance(table.get(key), dict):
            table[key] = tuple(table[key].items())
    if "exclusive" in table:
        table["exclusive"] = tuple(tuple(pair) for pair in table["exclusive"])
    # Bits a module takes only when its declaration says so (``takes_bits``): bh, whose work
    # functions run in softirq context and must not sleep.
    opt_in, takes = set(table.pop("opt_in_bits", ())), set(table.pop("takes_bits", ()))
    if isinstance(table.get("bits"), dict):
        table["bits"] = {n: v for n, v in table["bits"].items() if n not in opt_in or n in takes}
        table["since"] = tuple((n, v) for n, v in table.get("since", ()) if n not in opt_in or n in takes)
        bits = table["bits"]
        values = list(bits.values())
        if not all(isinstance(v, int) and v > 0 and v & (v - 1) == 0 for v in values) or len(set(values)) != len(values):
            raise WqkitError(f"{where}: parameter {table.get('name')!r}: its bits must be distinct powers of two")
        table["bits"] = tuple(bits.items())
        table.setdefault("min", 0)
        table.setdefault("max", sum(values))
    try:
        param = Param(**table)
    except TypeError as exc:
        raise WqkitError(f"{where}: parameter {table.get('name')!r}: {exc}") from None
    if param.settable or param.type == "run":
        if param.type in ("uint", "int", "flags", "run", "float", "names") and (param.min is None or param.max is None):
            raise WqkitError(f"{where}: parameter {param.name}: give its min and max")
        if param.settable and param.default is None:
            raise WqkitError(f"{where}: parameter {param.name}: give its default")
        if param.type == "choice" and not param.choices:
            raise WqkitError(f"{where}: parameter {param.name}: give its choices")
        if param.settable and param.type != "cpulist":
            param.check(where.name, param.default)
    for name, version in param.since:
        if name not in {"*", *param.choices, *(n for n, _ in param.bits)}:
            raise WqkitError(f"{where}: parameter {param.name}: since {name!r} is none of its choices or bits")
        release_tuple(version)
    return param


#: What a module's and an experiment's name may be: they name C functions, a module, debugfs
#: files and run directories.
NAME_RULE = re.compile(r"[a-z][a-z0-9_]{0,30}")


def check_name(name: object, what: str = "experiment") -> str:
    """``name`` if it follows NAME_RULE, else a one-line error."""
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
        raise WqkitError(f"{name!r} is not a{'n' if what[0] in 'aeiou' else ''} {what} name: lower-case letters, "
                         "digits and _, starting with a letter, at most 31 (it names C functions, a module, "
                         "debugfs files and run directories)")
    return name


def read_declaration(path: Path, what: str, required: set[str]) -> dict:
    """A declaration's TOML (a module's, a tracer's) with its ``required`` keys, or a one-line error."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WqkitError(f"{path}: not a {what} declaration ({exc})") from None
    missing = required - data.keys()
    if missing:
        raise WqkitError(f"{path}: missing {', '.join(sorted(missing))}")
    return data


def read_spec(path: Path) -> ModuleSpec:
    """The declaration in ``path`` (a TOML file), checked, or a one-line error."""
    data = read_declaration(path, "module", {"module", "source", "description"})
    links = tuple(data.get("links", ()))
    unknown = set(links) - LINKS.keys()
    if unknown:
        raise WqkitError(f"{path}: unknown links {sorted(unknown)} (known: {', '.join(LINKS)})")
    params = tuple(read_param(t, path) for t in data.get("param", ()))
    host_only = [p.name for p in params if p.type in HOST_ONLY]
    if host_only:
        raise WqkitError(f"{path}: a module cannot take {', '.join(host_only)} "
                         f"(types {', '.join(HOST_ONLY)} are for tracers)")
    by_name = {p.name: p for p in params}
    for param in params:
        for other, bit in param.requires:
            if other not in by_name or bit not in dict(by_name[other].bits):
                raise WqkitError(f"{path}: parameter {param.name} requires {other}={bit}, which it does not take")
        for other, _ in param.excludes:
            if other not in by_name:
                raise WqkitError(f"{path}: parameter {param.name} excludes a flag of {other}, which it does not take")
    limits = dict(data.get("limits", {}))
    bad = [name for name, value in limits.items()
           if not name.isidentifier() or isinstance(value, bool) or not isinstance(value, int) or value < 0]
    if bad:
        raise WqkitError(f"{path}: [limits] {', '.join(bad)}: each limit is a name and a non-negative integer")
    try:
        check_name(data["module"], "module")
    except WqkitError as exc:
        raise WqkitError(f"{path}: {exc}") from None
    spec = ModuleSpec(data["module"], data["description"], path, data["source"], params, links, limits)
    if not (path.parent / spec.source).is_file():
        raise WqkitError(f"{path}: its source {spec.source} is not beside it")
    if "experiment" in data:
        table = dict(data["experiment"])
        table.setdefault("name", path.stem)
        try:
            check_name(table["name"])
        except WqkitError as exc:
            raise WqkitError(f"{path}: {exc}") from None
        if "report" in table:
            table["report"] = tuple(table["report"])
        try:
            exp = Experiment(module_spec=spec, **table)
        except TypeError as exc:
            raise WqkitError(f"{path}: [experiment]: {exc}") from None
        for key in ("count_param", "calibrates"):
            if getattr(exp, key) is not None and getattr(exp, key) not in {p.name for p in params}:
                raise WqkitError(f"{path}: {key} {getattr(exp, key)!r} is not one of its parameters")
        object.__setattr__(spec, "experiment", exp)
    return spec


def spec_files(directory: Path) -> list[Path]:
    """The declarations in a directory: its own ``*.toml``, or else its subdirectories'."""
    own = sorted(p for p in directory.glob("*.toml") if p.name != SHARED_PARAMS.name)
    return own or sorted(directory.glob("*/*.toml"))


def external_dirs() -> list[Path]:
    """The directories of experiments outside the repository: ``$WQKIT_EXPERIMENTS``
    (DIR[:DIR...]) and what packages name in the ``wqkit.experiments`` entry point group
    (a path, or a callable returning one)."""
    dirs = [Path(d) for d in os.environ.get(ENV, "").split(":") if d]
    for point in entry_points(group=ENTRY_POINT_GROUP):
        value = point.load()
        dirs.append(Path(value() if callable(value) else value))
    return dirs


def modules() -> dict[str, ModuleSpec]:
    """Every module wqkit knows, by module name: the repository's, then external ones."""
    return _modules(os.environ.get(ENV, ""))


@lru_cache(maxsize=8)
def _modules(env: str) -> dict[str, ModuleSpec]:
    found: dict[str, ModuleSpec] = {}
    for directory in [MODULES_DIR, *external_dirs()]:
        if not directory.is_dir():
            raise WqkitError(f"{ENV}: {directory} is not a directory")
        for path in spec_files(directory):
            spec = read_spec(path)
            if spec.name in found:
                raise WqkitError(f"{path}: module {spec.name} is already declared in {found[spec.name].spec_file}")
            found[spec.name] = spec
    return found


def experiments() -> dict[str, Experiment]:
    """Every experiment wqkit knows, by name."""
    exps = {}
    for spec in modules().values():
        if spec.experiment is not None:
            exps[spec.experiment.name] = spec.experiment
    return exps


def module_spec(name: str) -> ModuleSpec:
    """The declaration of module ``name``, or a one-line error listing the known ones."""
    try:
        return modules()[name]
    except KeyError:
        raise WqkitError(f"unknown module {name!r} (known: {', '.join(modules())})") from None


def calibrator() -> Experiment:
    """The experiment that measures the timestamp pair (its declaration says ``calibrates``)."""
    found = [exp for exp in experiments().values() if exp.calibrates]
    if len(found) != 1:
        raise WqkitError(f"exactly one experiment must declare calibrates, not {len(found)} "
                         f"({', '.join(e.name for e in found) or 'none'})")
    return found[0]


def experiment(name: str) -> Experiment:
    """The experiment called ``name``, or a one-line error listing them."""
    try:
        return experiments()[name]
    except KeyError:
        raise WqkitError(f"unknown experiment {name!r} (known: {', '.join(experiments())})") from None
