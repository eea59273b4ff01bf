"""Every module parameter at and one past each end of its declared range, given to the module
itself (raw insmod, and a write to a writable /sys/module/*/parameters/* file): the module takes
exactly what its declaration allows, refuses the rest with EINVAL and one kernel log line, and
the kernel reports nothing (`make test-debug` runs this on the debug and KCSAN kernels too)."""

from __future__ import annotations

import pytest

from wqkit.errors import WqkitError
from wqkit.experiments import kmod
from wqkit.experiments.spec import Param, modules
from wqkit.lab.splats import find_splats

pytestmark = pytest.mark.lab

#: The parameter types with a numeric range.
NUMERIC = ("uint", "int", "flags", "bool")


def boundary_values(param: Param) -> list[str]:
    """The values worth trying for ``param``: each end of its range and one past it."""
    if param.type == "bool":
        return ["0", "1", "2", "-1"]
    if param.type == "cpulist":
        return ["0", "0,1", "0," * (param.max or 1) + "0", "4096", "x"]
    return [str(v) for v in (param.min - 1, param.min, param.max, param.max + 1)]


def declared_ok(module: str, param: Param, value: str) -> bool:
    try:
        param.check(module, value)
    except WqkitError:
        return False
    return True


CASES = [(spec.name, param, value) for spec in modules().values() if not spec.external
         for param in spec.params if param.settable and (param.type in NUMERIC or param.type == "cpulist")
         for value in boundary_values(param)]
RUN_CASES = [(spec.name, param, value) for spec in modules().values() if not spec.external
             for param in spec.params if param.type == "run" for value in boundary_values(param)]


@pytest.mark.parametrize("name, param, value", CASES, ids=[f"{n}.{p.name}={v}" for n, p, v in CASES])
def test_the_module_takes_exactly_its_declared_range_at_load(lab_target, name, param, value):
    ko = kmod.build(lab_target) / f"{name}.ko"
    args = f"{param.name}={value}"
    mark = kmod.log_mark(lab_target)
    loaded = lab_target.run(f"insmod {ko} {args}")
    try:
        log = kmod.log_since(lab_target, mark)
        assert (loaded.returncode == 0) == declared_ok(name, param, value), (args, loaded.stderr, log)
        if loaded.returncode:
            assert "Invalid argument" in loaded.stderr or "Invalid parameters" in loaded.stderr, loaded.stderr
            assert len([line for line in log if name in line or param.name in line]) >= 1, log
    finally:
        lab_target.run(f"rmmod {name} 2>/dev/null", timeout=900)
    assert find_splats(kmod.log_since(lab_target, mark)) == []


@pytest.mark.parametrize("name, param, value", RUN_CASES, ids=[f"{n}.{p.name}={v}" for n, p, v in RUN_CASES])
def test_a_writable_parameter_takes_exactly_its_declared_range(lab_target, name, param, value):
    ko = kmod.build(lab_target) / f"{name}.ko"
    mark = kmod.log_mark(lab_target)
    lab_target.run(f"insmod {ko}", check=True)
    try:
        written = lab_target.run(f"echo {value} > /sys/module/{name}/parameters/{param.name}", timeout=900)
        log = kmod.log_since(lab_target, mark)
        assert (written.returncode == 0) == declared_ok(name, param, value), (value, written.stderr, log)
        if written.returncode:
            assert "Invalid argument" in written.stderr, written.stderr
            assert any(param.name in line for line in log), log
    finally:
        lab_target.run(f"rmmod {name}", check=True, timeout=900)
    assert find_splats(kmod.log_since(lab_target, mark)) == []
