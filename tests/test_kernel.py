"""Lab kernels as values, and how a user's --kernel is resolved."""

import pytest

from wqkit.errors import WqkitError
from wqkit.lab.kernel import STOCK_RELEASE, LabKernel, installed_series, resolve_kernel


def test_stock_kernel_is_debian_6_12_with_its_files():
    kernel = resolve_kernel(None)
    assert kernel == resolve_kernel("stock") == LabKernel.stock()
    # The tested release while the archive has it, else the newest 6.12 that setup installed.
    assert kernel.release.startswith("6.12.") and not kernel.patched
    assert kernel.release == STOCK_RELEASE or STOCK_RELEASE not in installed_series("6.12")
    assert kernel.image.name == f"vmlinuz-{kernel.release}" and kernel.image.is_file()
    assert kernel.build_dir.as_posix() == f"/lib/modules/{kernel.release}/build"
    assert kernel.boot_target == kernel.image


def test_the_lab_release_can_be_chosen_by_environment(monkeypatch):
    old = resolve_kernel("6.1").release
    monkeypatch.setenv("WQKIT_LAB_RELEASE", old)
    assert LabKernel.stock().release == resolve_kernel(None).release == old


def test_a_series_names_its_installed_release():
    # make setup installs Debian 12's own 6.1 kernel next to the 6.12 lab kernel.
    assert resolve_kernel("6.12").release == installed_series("6.12")[-1]
    old = resolve_kernel("6.1")
    assert old.release.startswith("6.1.") and old.image.is_file() and (old.build_dir / "Makefile").exists()
    with pytest.raises(WqkitError, match=r"unknown lab kernel '6\.99'"):
        resolve_kernel("6.99")


def test_unknown_release_is_a_one_line_error():
    with pytest.raises(WqkitError, match=r"unknown lab kernel '9\.9\.9'") as info:
        resolve_kernel("9.9.9")
    assert "\n" not in str(info.value)


def test_a_directory_that_is_no_built_tree_is_refused(tmp_path):
    with pytest.raises(WqkitError, match="is not a built kernel tree"):
        resolve_kernel(str(tmp_path))


def test_a_built_tree_is_a_patched_kernel_value(tmp_path):
    (tmp_path / "include" / "config").mkdir(parents=True)
    (tmp_path / "include" / "config" / "kernel.release").write_text("6.12.95-wqkit\n")
    kernel = resolve_kernel(str(tmp_path))
    assert (kernel.release, kernel.patched, kernel.label) == ("6.12.95-wqkit", True, "6.12.95-wqkit (patched)")
    assert kernel.boot_target == tmp_path and kernel.debug_vmlinux == tmp_path / "vmlinux"
    with pytest.raises(WqkitError, match="bzImage is missing"):
        kernel.check_bootable()
