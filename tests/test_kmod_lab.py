"""Module control in the lab: build, load with a parameter, always unload."""

import pytest

from wqkit.experiments import kmod
from wqkit.errors import WqkitError

pytestmark = pytest.mark.lab


def test_module_loads_with_its_parameter_and_is_unloaded(lab_target):
    with kmod.loaded(lab_target, "wq_smoke", {"nr": 1234}) as module:
        assert kmod.is_loaded(lab_target, "wq_smoke")
        assert lab_target.run("cat /sys/module/wq_smoke/parameters/nr", check=True).stdout.strip() == "1234"
        assert any("wq_smoke: nr=1234 executed=1234" in line for line in module.dmesg())
    assert not kmod.is_loaded(lab_target, "wq_smoke")
    assert "wq_smoke" not in lab_target.run("lsmod", check=True).stdout


def test_module_is_unloaded_when_the_run_fails(lab_target):
    with pytest.raises(RuntimeError, match="experiment failed"):
        with kmod.loaded(lab_target, "wq_smoke", {"nr": 10}):
            raise RuntimeError("experiment failed")
    assert not kmod.is_loaded(lab_target, "wq_smoke")


@pytest.mark.parametrize("bad", ["0", "100001"])
def test_module_itself_refuses_an_invalid_parameter(lab_target, bad):
    ko = kmod.build(lab_target) / "wq_smoke.ko"
    before = kmod.log_mark(lab_target)
    result = lab_target.run(f"insmod {ko} nr={bad}")
    assert result.returncode != 0
    assert "Invalid parameters" in result.stderr  # kmod spells -EINVAL so
    log = kmod.log_since(lab_target, before)
    assert any(f"wq_smoke: nr={bad} is out of range" in line for line in log)
    assert not kmod.is_loaded(lab_target, "wq_smoke")


def test_wqkit_refuses_an_invalid_parameter_before_loading(lab_target):
    with pytest.raises(WqkitError, match=r"nr=0 is out of range \(1\.\.100000\)"):
        with kmod.loaded(lab_target, "wq_smoke", {"nr": 0}):
            pass
