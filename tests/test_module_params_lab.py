"""Every module parameter at and one past each end of its declared range, given to the module
itself (raw insmod, and a write to a writable /sys/module/*/parameters/* file): the module takes
exactly what wqkit's checks allow, refuses the rest with EINVAL and a kernel log line naming the
parameter, and the kernel reports nothing against the module (`make test-debug` runs this on the
debug and KCSAN kernels too). One guest command per module tries all of its cases, each marked in
the kernel log."""

from __future__ import annotations

import re

import pytest

from wqkit.errors import WqkitError
from wqkit.experiments import kmod
from wqkit.experiments.runner import check_cpu
from wqkit.runs.spec import ModuleSpec, Param, modules
from wqkit.lab.splats import module_splats

pytestmark = pytest.mark.lab

#: The parameter types with a numeric range.
NUMERIC = ("uint", "int", "flags", "bool")
SPECS = [spec for spec in modules().values() if not spec.external]


def boundary_values(param: Param, cpus: int) -> list[str]:
    """The values worth trying for ``param``: each end of its range and one past it (and, for a
    CPU, the last CPU the target has and the first it has not)."""
    if param.type == "bool":
        return ["0", "1", "2", "-1"]
    if param.type == "choice":
        return [*param.choices, "nonesuch"]
    if param.type == "cpulist":
        return ["0", ",".join(map(str, range(cpus))), "0," * (param.max or 1) + "0", str(cpus), "x"]
    values = [param.min - 1, param.min, param.max, param.max + 1]
    if param.type == "flags":
        values += [bit for _, bit in param.bits]        # each flag alone (bh: a BH workqueue)
    if param.role == "cpu":
        values += [cpus - 1, cpus]
    return [str(v) for v in values]


#: A case: the parameter tried, and every insmod argument (it, what it requires, the sample count).
Case = tuple[Param, dict[str, str]]


def cases_of(spec: ModuleSpec, param: Param, cpus: int) -> list[Case]:
    """``param`` at each of its boundary values, alone and, where it requires or excludes a flag of
    another parameter (an affinity scope needs an unbound workqueue, max_active excludes bh), with
    that flag too. An experiment's sample count (its ``count_param``) is at its minimum unless it
    is the parameter tried: the cases check what the module takes, not its load, and new_worker's
    500 items of 1 s at delay=0 left 502 idle workers on CPU 0's pool for 5 minutes, so that a
    later flood there of fewer items made none."""
    quiet = {}
    count = spec.param(spec.experiment.count_param) if spec.experiment else None
    if count is not None and count.settable and count.name != param.name:
        quiet = {count.name: str(count.min)}
    cases = []
    for value in boundary_values(param, cpus):
        cases.append((param, {**quiet, param.name: value}))
        for other, bit in param.requires + param.excludes:
            if bit in dict(spec.param(other).bits):
                cases.append((param, {**quiet, param.name: value, other: str(dict(spec.param(other).bits)[bit])}))
    return cases


def wqkit_takes(spec: ModuleSpec, args: dict[str, str], cpus: int, release: str) -> bool:
    """Whether wqkit's own checks (the declaration, the target's CPUs, its kernel's release) take ``args``."""
    try:
        for name, value in args.items():        # a writable (run) parameter too
            spec.param(name).check(spec.name, value)
        values = spec.checked({name: value for name, value in args.items() if spec.param(name).settable})
        check_cpu(spec.params, values, cpus)
        spec.check_release(values, release)
    except WqkitError:
        return False
    return True


def try_cases(target, spec: ModuleSpec, cases: list[Case], writable: bool) -> list[tuple[int, list[str]]]:
    """Each case's exit status and the kernel log lines it caused: load with the value (or load,
    then write the value to the parameter's file), unload; all in one guest command."""
    ko = kmod.build(target) / f"{spec.name}.ko"
    steps = []
    for index, (param, args) in enumerate(cases):
        mark = f"echo wqkit-case-{index} > /dev/kmsg"
        if writable:
            try_it = (f"insmod {ko} && {{ echo {args[param.name]} > /sys/module/{spec.name}/parameters/{param.name}; "
                      f"rc=$?; rmmod {spec.name}; }}")
        else:
            given = " ".join(f"{name}={value}" for name, value in args.items())
            try_it = f"{{ insmod {ko} {given}; rc=$?; rmmod {spec.name} 2>/dev/null; }}"
        steps.append(f"{mark}; {try_it}; echo rc=$rc")
    mark = kmod.log_mark(target)
    out = target.run("; ".join(steps) + "; echo wqkit-case-end > /dev/kmsg", timeout=1800, check=True).stdout
    codes = [int(c) for c in re.findall(r"^rc=(\d+)$", out, re.MULTILINE)]
    log = kmod.log_since(target, mark)
    per_case: list[list[str]] = []
    for line in log:
        if re.search(r"wqkit-case-\d+$", line):
            per_case.append([])
        elif per_case and not line.endswith("wqkit-case-end"):
            per_case[-1].append(line)
    assert len(codes) == len(per_case) == len(cases), (len(codes), len(per_case), out[-500:])
    return list(zip(codes, per_case))


def check_outcomes(spec: ModuleSpec, cases: list[Case], outcomes, cpus: int, release: str) -> list[str]:
    """Every way the module differed from wqkit's checks, or reported trouble."""
    wrong = []
    for (param, args), (code, log) in zip(cases, outcomes):
        wanted = wqkit_takes(spec, args, cpus, release)
        given = " ".join(f"{name}={value}" for name, value in args.items())
        if (code == 0) != wanted:
            wrong.append(f"{given}: module {'took' if code == 0 else 'refused'} it, wqkit "
                         f"{'takes' if wanted else 'refuses'} it; log: {log[-2:]}")
        elif code and not any(param.name in line for line in log):
            wrong.append(f"{given}: refused without a log line naming it: {log}")
        splats, _ = module_splats(log, spec.name)
        if splats:
            wrong.append(f"{given}: kernel reports: {[s.line for s in splats]}")
    return wrong


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_the_module_takes_exactly_what_wqkit_allows_at_load(lab_target, spec):
    cpus = int(lab_target.run("nproc", check=True).stdout)
    cases = [case for p in spec.params if p.settable and (p.type in NUMERIC or p.type in ("cpulist", "choice"))
             for case in cases_of(spec, p, cpus)]
    if not cases:
        pytest.skip(f"{spec.name} takes no parameter at load")
    wrong = check_outcomes(spec, cases, try_cases(lab_target, spec, cases, writable=False), cpus,
                           lab_target.release)
    assert not wrong, "\n".join(wrong)
    assert not kmod.is_loaded(lab_target, spec.name)


RUN_SPECS = [s for s in SPECS if any(p.type == "run" for p in s.params)]


@pytest.mark.parametrize("spec", RUN_SPECS, ids=[s.name for s in RUN_SPECS])
def test_a_writable_parameter_takes_exactly_what_wqkit_allows(lab_target, spec):
    cpus = int(lab_target.run("nproc", check=True).stdout)
    cases = [(p, {p.name: v}) for p in spec.params if p.type == "run" for v in boundary_values(p, cpus)]
    wrong = check_outcomes(spec, cases, try_cases(lab_target, spec, cases, writable=True), cpus, lab_target.release)
    assert not wrong, "\n".join(wrong)
    assert not kmod.is_loaded(lab_target, spec.name)
