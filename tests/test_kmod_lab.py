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


def test_the_targets_operations_answer_what_the_guests_tools_say(lab_target):
    # The agent's own reads, writes, loads and kernel log (no process started) against insmod,
    # grep, dmesg and lsmod in the same guest.
    message = "wqkit-test: caf\u00e9 \\x41 tab\there del\x7f"
    lab_target.write("/dev/kmsg", message + "\n")
    lines, next_record = lab_target.kernel_log()
    dmesg = lab_target.run("dmesg", check=True).stdout.splitlines()
    assert len(lines) > 20 and dmesg[:len(lines)] == lines
    assert lines[-1].endswith("] " + message.replace("\x7f", "\\x7f"))
    assert kmod.log_since(lab_target, next_record) == dmesg[len(lines):]

    ko = kmod.build(lab_target) / "wq_smoke.ko"
    mark = kmod.log_mark(lab_target)
    assert lab_target.load_module(str(ko), ["nr=0"]) == "Invalid argument"
    assert any("wq_smoke: nr=0 is out of range" in line for line in kmod.log_since(lab_target, mark))
    assert lab_target.load_module(str(ko), ["nr=77"]) is None
    try:
        assert "wq_smoke" in lab_target.run("lsmod", check=True).stdout and kmod.is_loaded(lab_target, "wq_smoke")
        grep = lab_target.run("cd /sys/module/wq_smoke/parameters && grep -H . *", check=True).stdout
        read = lab_target.read_dir("/sys/module/wq_smoke/parameters")
        assert {name: text.rstrip("\n") for name, text in read.items()} == dict(line.split(":", 1)
                                                                              for line in grep.splitlines())
        assert lab_target.load_module(str(ko), ["nr=77"]) == "File exists"
    finally:
        assert lab_target.unload_module("wq_smoke") is None
    assert "wq_smoke" not in lab_target.run("lsmod", check=True).stdout
    assert lab_target.unload_module("wq_smoke") == "No such file or directory"
    with pytest.raises(WqkitError, match="could not read /nonexistent: No such file or directory on the lab target"):
        lab_target.read("/nonexistent")
    assert lab_target.exists("/proc/modules") and not lab_target.exists("/nonexistent")
