"""The guest's root (the host's, over 9p) mounted with ``cache=mmap``: programs start without a 9p request per page.

virtme-ng mounts the host's root with 9p's default ``cache=none``. That mode
turns the file system's readahead off (fs/9p/vfs_super.c: ``ra_pages = 0``),
so every page a program maps (its code, its libraries) is its own 9p round
trip under emulation: bpftrace's first start faulted in 8,628 pages of
libLLVM and libclang one by one. ``cache=mmap`` keeps the page cache for
mapped and read files with readahead of ``msize`` bytes, and nothing more: it
does not cache metadata (``cache=loose`` would), so each open still asks the
host, and a guest inode is dropped with its last user (fs/9p's
v9fs_drop_inode), so a file opened again is read as the host has it now. The root is mounted read-only, so no
write is ever cached. One exception: what the guest reads through an overlay
(/home, /usr...: wqkit.lab.vm.GUEST_OVERLAYS) keeps its 9p dentry, and so its
pages, as long as overlayfs keeps its own, with no question to the host. So
wqkit's sources and the cache's parts the guest reads are 9p mounts of their
own there, uncached (wqkit.lab.vm.read_fresh); other files under an overlay
that the host rewrites while a lab is up (a system library upgraded under a
kept lab) may be read as they were. Measured under TCG in
benchmarks/lab_speed.py and benchmarks/tracers.py (README).

virtme-ng's options are in two places: the ``/init`` script of its initramfs
(Debian's kernels, whose 9p is a module) and ``rootflags=`` on the kernel's
command line (wqkit's builds, which boot without an initramfs). The
initramfs is a newc cpio archive; the kernel unpacks archives laid end to end
in order, a later file replacing an earlier one, so the script with the new
option is appended as a second archive.
"""

from __future__ import annotations

import re
from pathlib import Path

from wqkit.errors import LabError

#: What the root's 9p options gain.
ROOT_CACHE = "cache=mmap"
#: An option of virtme-ng's 9p mount of the root: how that mount is found in its /init.
_ROOT_MOUNT_MARK = "msize=524288"
_NEWC_MAGIC = b"070701"
_NEWC_HEADER = 110
_TRAILER = "TRAILER!!!"


def _newc_members(archive: bytes):
    """(name, header fields, body) of each member of the first newc archive in ``archive``."""
    offset = 0
    while True:
        header = archive[offset:offset + _NEWC_HEADER]
        if len(header) < _NEWC_HEADER or header[:6] != _NEWC_MAGIC:
            raise LabError(f"virtme-ng's initramfs is not a newc cpio archive at byte {offset}")
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        size, name_size = fields[6], fields[11]
        name = archive[offset + _NEWC_HEADER:offset + _NEWC_HEADER + name_size - 1].decode()
        body_at = (offset + _NEWC_HEADER + name_size + 3) & ~3
        if name == _TRAILER:
            return
        yield name, fields, archive[body_at:body_at + size]
        offset = (body_at + size + 3) & ~3


def _newc_member(name: str, mode: int, body: bytes) -> bytes:
    encoded = name.encode() + b"\0"
    fields = [0, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(encoded), 0]
    member = _NEWC_MAGIC + b"".join(b"%08X" % field for field in fields) + encoded
    member += b"\0" * (-len(member) % 4) + body
    return member + b"\0" * (-len(member) % 4)


def _with_cache(options: str) -> str:
    return options if ROOT_CACHE in options else f"{options},{ROOT_CACHE}"


def cache_root_in_initramfs(path: Path) -> None:
    """Append to virtme-ng's initramfs an ``/init`` whose 9p mount of the root has ROOT_CACHE."""
    archive = path.read_bytes()
    init = next(((fields, body) for name, fields, body in _newc_members(archive) if name == "init"), None)
    if init is None:
        raise LabError(f"virtme-ng's initramfs {path} has no /init")
    fields, script = init
    changed, count = re.subn(rb"(-o\s+)(\S*" + _ROOT_MOUNT_MARK.encode() + rb"\S*)(\s+/dev/root\s)",
                             lambda m: m.group(1) + _with_cache(m.group(2).decode()).encode() + m.group(3), script)
    if count != 1:
        raise LabError("virtme-ng's /init does not mount /dev/root over 9p as wqkit knows it "
                       f"(options with {_ROOT_MOUNT_MARK}): its root would stay uncached")
    second = _newc_member("init", fields[1], changed) + _newc_member(_TRAILER, 0, b"")
    path.write_bytes(archive + second + b"\0" * (-len(second) % 512))


def cache_root_in_command_line(append: str) -> str:
    """A kernel command line whose 9p ``rootflags=`` have ROOT_CACHE (unchanged without them)."""
    if "rootfstype=9p" not in append:
        return append
    return re.sub(r"(^|\s)rootflags=(\S+)", lambda m: m.group(1) + "rootflags=" + _with_cache(m.group(2)), append)
