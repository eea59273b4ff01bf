"""Lab kernels as values, provisioned into the cache (never installed), and --kernel resolution."""

import os
import subprocess
from pathlib import Path

import pytest

from wqkit.errors import WqkitError
from wqkit.lab.choose import resolve_kernel
from wqkit.lab.kernel import STOCK_RELEASE, LabKernel, kernels_dir, provisioned_releases
from wqkit.lab.provision import kernel_packages, resolve_release
from wqkit.paths import SOURCE_DIR


def test_stock_kernel_is_debian_6_12_extracted_in_the_cache():
    kernel = resolve_kernel(None)
    assert kernel == resolve_kernel("stock") == LabKernel.stock()
    # The tested release while the archive has it, else the newest 6.12 that provisioning took.
    assert kernel.release.startswith("6.12.") and not kernel.patched
    assert kernel.release == STOCK_RELEASE or STOCK_RELEASE not in provisioned_releases("6.12")
    assert kernel.image.is_file() and kernel.image.is_relative_to(kernels_dir())
    assert kernel.boot_target == kernel.image
    # depmod ran on the extracted modules: virtme-ng and modprobe in the guest need modules.dep.
    assert (kernel.modules_dir / "modules.dep").stat().st_size > 0


def test_kbuild_links_point_into_the_cache_not_at_the_hosts_usr_src():
    kernel = LabKernel.stock()
    # What BCC and bpftrace open in the guest (/lib/modules/RELEASE/build) is the Kbuild tree
    # modules are built against on the host, and its Makefile includes the cached common headers.
    assert (kernel.modules_dir / "build").resolve() == kernel.build_dir.resolve()
    # Relative links and include: the tree works wherever it lies (another user's cache hard-links it).
    assert not os.readlink(kernel.modules_dir / "build").startswith("/")
    include = (kernel.build_dir / "Makefile").read_text().split()
    assert include[0] == "include" and include[1].startswith("$(CURDIR)/../linux-headers-")
    common = kernel.build_dir.resolve() / include[1].removeprefix("$(CURDIR)/")
    assert common.is_file() and (kernel.build_dir / "scripts" / "mod" / "modpost").exists()


def boot_state() -> dict:
    """What the machine boots and which kernels it has installed."""
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n", "linux-image-*"],
                               capture_output=True, text=True).stdout
    listing = {d: sorted(p.name for p in Path(d).iterdir()) if Path(d).is_dir() else None
               for d in ("/boot", "/lib/modules")}
    return {"packages": sorted(installed.splitlines()), **listing}


@pytest.mark.network
def test_make_setup_leaves_boot_and_the_installed_kernels_as_they_were():
    before = boot_state()
    proc = subprocess.run(["make", "-C", str(SOURCE_DIR), "setup"], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert boot_state() == before


def test_provisioning_never_touches_the_hosts_boot_or_package_list():
    releases = provisioned_releases()
    assert {r.split(".")[0] + "." + r.split(".")[1] for r in releases} >= {"6.12", "6.1"}
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", "linux-image-*"],
                               capture_output=True, text=True).stdout
    for release in releases:
        assert f"linux-image-{release} install ok installed" not in installed
        assert not list(Path("/boot").glob(f"*{release}*")), f"/boot holds a file of {release}"
        assert not Path(f"/lib/modules/{release}").exists()


def test_the_lab_release_can_be_chosen_by_environment(monkeypatch):
    old = resolve_kernel("6.1").release
    monkeypatch.setenv("WQKIT_LAB_RELEASE", old)
    assert LabKernel.stock().release == resolve_kernel(None).release == old


def test_a_series_names_its_newest_provisioned_release():
    assert resolve_kernel("6.12").release == provisioned_releases("6.12")[-1]
    old = resolve_kernel("6.1")
    assert old.release.startswith("6.1.") and old.image.is_file() and (old.build_dir / "Makefile").exists()
    with pytest.raises(WqkitError, match=r"unknown lab kernel '6\.99'"):
        resolve_kernel("6.99")


def test_apt_names_the_release_and_packages_to_provision():
    # Read from apt's own lists (no download): the stock spec and a series resolve to real packages.
    assert resolve_release("stock").startswith("6.12.")
    assert resolve_release("6.1").startswith("6.1.")
    packages = kernel_packages(resolve_release("6.1"))
    assert packages[0].startswith("linux-image-6.1.") and any(p.startswith("linux-kbuild-") for p in packages)
    with pytest.raises(WqkitError, match="apt knows no linux-headers-9.9.9"):
        kernel_packages("9.9.9")


def test_unknown_release_is_a_one_line_error():
    with pytest.raises(WqkitError, match=r"unknown lab kernel '9\.9\.9'") as info:
        resolve_kernel("9.9.9")
    assert "\n" not in str(info.value) and "wqkit lab provision" in str(info.value)


def test_a_kernel_that_is_not_provisioned_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    with pytest.raises(WqkitError, match=r"is not provisioned .*`wqkit lab provision"):
        LabKernel.stock().check_bootable()


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


@pytest.mark.parametrize("stop", ["interrupted", "an option lost"])
def test_a_configuration_stopped_before_its_check_is_configured_again(tmp_path, monkeypatch, stop):
    # make is replaced by its effect on .config: the first olddefconfig is interrupted (Ctrl-C,
    # a killed build) or loses an option; a second build must configure and check again, never
    # take the half-made .config as done.
    from wqkit.lab import build as kbuild

    build = kbuild.KernelBuild("patched", tmp_path)
    build.src.mkdir(parents=True)
    wanted = kbuild.config_fragment("patched")
    done = []

    def make(cmd, what, cwd=None):
        done.append(what)
        config = build.out / ".config"
        if what == "make tinyconfig":
            config.write_text("CONFIG_64BIT=y\n")
        elif what == "make olddefconfig":
            if done.count(what) == 1 and stop == "interrupted":
                raise KeyboardInterrupt
            lost = done.count(what) == 1 and stop == "an option lost"
            config.write_text(wanted.replace("CONFIG_WQ_MEASURE=y", "# CONFIG_WQ_MEASURE is not set")
                              if lost else wanted)

    monkeypatch.setattr(kbuild, "_run", make)
    with pytest.raises(KeyboardInterrupt if stop == "interrupted" else WqkitError):
        kbuild.configure(build, progress=lambda m: None)
    kbuild.configure(build, progress=lambda m: None)
    assert done.count("make olddefconfig") == 2
    kbuild.configure(build, progress=lambda m: None)        # checked and marked: now cached
    assert done.count("make olddefconfig") == 2


def test_a_second_build_of_a_variant_waits_for_the_first_and_finds_it_cached(tmp_path, monkeypatch):
    """The test suite starts the patched build in the background; the test that needs it calls
    build_kernel too, which must wait for that build (its lock), not build beside it."""
    import fcntl
    import threading

    from wqkit.lab import build as kbuild

    build = kbuild.KernelBuild("patched", tmp_path)
    monkeypatch.setattr(kbuild.KernelBuild, "of", classmethod(lambda cls, variant, series=None: build))
    monkeypatch.setattr(kbuild, "_build", lambda *args: pytest.fail("built beside the running build"))
    tmp_path.mkdir(exist_ok=True)
    holder = open(tmp_path / "lock", "w")
    fcntl.flock(holder, fcntl.LOCK_EX)          # the first build, under way

    def finish() -> None:
        build.complete.write_text("{}")
        holder.close()                          # its lock released as it ends

    timer = threading.Timer(1.0, finish)
    timer.start()
    said = []
    assert kbuild.build_kernel("patched", progress=said.append) is build
    assert "another build of it is running" in said[0] and "built meanwhile" in said[-1]
    timer.join()


def test_a_series_other_than_6_12_adds_its_renames_its_patches_and_is_refused_where_wqkit_cannot_build_it():
    from wqkit.lab import build as kbuild
    from wqkit.lab.kernel_source import built_only

    on_7_3 = kbuild.config_fragment("vanilla", "7.3")
    assert kbuild.config_fragment("vanilla").count("CONFIG_SYSCTL=y") == 0
    # The renamed option is wanted on 7.3, and its old name declared unset after lab.config's line.
    assert "CONFIG_SYSCTL=y" in on_7_3
    # A 7.3 configuration has no PROC_SYSCTL at all: 7.3's fragment holds on it, 6.12's does not.
    config = "\n".join(line for line in on_7_3.splitlines() if not line.startswith("CONFIG_PROC_SYSCTL"))
    assert kbuild.unmet_options(config, on_7_3) == []
    assert kbuild.unmet_options(config, kbuild.config_fragment("vanilla")) == ["CONFIG_PROC_SYSCTL=y"]
    assert built_only("7.3") and not built_only("6.12") and not built_only("6.1")
    # The patched 7.3 build applies linux_patch_exp/7.3/ (the port), and its key hashes those patches.
    assert [p.parent.name for p in kbuild.patch_series("7.3")] == ["7.3"] * 3
    assert kbuild.KernelBuild.of("patched", "7.3").home.name.startswith("patched-7.3-")
    with pytest.raises(WqkitError, match="not '7.9'"):
        kbuild.KernelBuild.of("vanilla", "7.9")
