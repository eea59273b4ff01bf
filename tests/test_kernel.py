"""Lab kernels as values, and how a user's --kernel is resolved."""

import pytest

from wqkit.errors import WqkitError
from wqkit.lab.kernel import STOCK_RELEASE, LabKernel, resolve_kernel


def test_stock_kernel_is_debian_6_12_with_its_files():
    kernel = resolve_kernel(None)
    assert kernel == resolve_kernel("stock") == LabKernel.stock()
    assert kernel.release == STOCK_RELEASE and not kernel.patched
    assert kernel.image.name == f"vmlinuz-{STOCK_RELEASE}"
    assert kernel.build_dir.as_posix() == f"/lib/modules/{STOCK_RELEASE}/build"
    assert kernel.boot_target == kernel.image


def test_a_series_names_its_installed_release():
    # make setup installs Debian 12's own 6.1 kernel next to the 6.12 lab kernel.
    assert resolve_kernel("6.12") == LabKernel.stock()
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
