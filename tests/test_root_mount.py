"""The guest's root over 9p with its page cache: virtme-ng's own initramfs and command line, changed in one option."""

import subprocess
from pathlib import Path

import pytest
from virtme import mkinitramfs

from wqkit.errors import LabError
from wqkit.lab.root_mount import ROOT_CACHE, cache_root_in_command_line, cache_root_in_initramfs
from wqkit.lab.vm import read_fresh


def _virtme_initramfs(path):
    config = mkinitramfs.Config()
    config.busybox = mkinitramfs.find_busybox("/", True)
    config.modfiles = []
    with open(path, "wb") as out:
        mkinitramfs.mkinitramfs(out, config)
    return path.read_bytes()


def _cpio_file(archive: bytes, name: str) -> bytes:
    """``name`` from the first newc archive in ``archive``, read by GNU cpio (not by wqkit's reader)."""
    return subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", name], input=archive, capture_output=True,
                          check=True).stdout


def test_the_initramfs_gains_an_init_that_mounts_the_root_cached_and_keeps_the_rest(tmp_path):
    if mkinitramfs.find_busybox("/", True) is None:
        pytest.skip("no busybox on this host (virtme-ng's initramfs needs it)")
    path = tmp_path / "initramfs.img"
    original = _virtme_initramfs(path)
    cache_root_in_initramfs(path)
    patched = path.read_bytes()
    assert patched.startswith(original)         # virtme-ng's archive untouched: busybox, modules, its /init
    old_init, new_init = _cpio_file(original, "init"), _cpio_file(patched[len(original):], "init")
    mounts = [line for line in new_init.decode().splitlines() if "/dev/root" in line]
    assert len(mounts) == 1 and f"msize=524288,{ROOT_CACHE} /dev/root" in mounts[0]
    assert new_init.replace(f",{ROOT_CACHE}".encode(), b"") == old_init
    cache_root_in_initramfs(path)                # a second pass adds the option once only
    assert _cpio_file(path.read_bytes()[len(patched):], "init") == new_init


def test_an_initramfs_wqkit_does_not_know_is_a_one_line_error(tmp_path):
    path = tmp_path / "initramfs.img"
    path.write_bytes(b"\x1f\x8b compressed")
    with pytest.raises(LabError, match="not a newc cpio archive"):
        cache_root_in_initramfs(path)


def test_the_command_line_s_9p_root_flags_gain_the_cache_and_nothing_else_changes():
    line = ("root=/dev/root rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288 rootfstype=9p "
            "console=ttyS0 init=/x")
    assert cache_root_in_command_line(line) == line.replace("msize=524288 ", f"msize=524288,{ROOT_CACHE} ")
    assert cache_root_in_command_line(cache_root_in_command_line(line)) == cache_root_in_command_line(line)
    disk = "root=/dev/vda rootflags=discard console=ttyS0"
    assert cache_root_in_command_line(disk) == disk


def test_only_what_no_overlay_covers_is_read_fresh_through_the_cached_root():
    assert read_fresh(Path("/root/.cache/wqkit/modules")) and read_fresh(Path("/work/wqkit"))
    assert not read_fresh(Path("/home/user/.cache/wqkit/modules"))      # under the /home overlay
    assert not read_fresh(Path("/tmp/wqkit"))                           # masked: the guest's own /tmp
