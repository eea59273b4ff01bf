"""The lab guest's init: ``guest_init.c`` built once per source, static, into wqkit's cache.

The guest runs it as PID 1 straight from the host's root file system (over 9p),
before anything is mounted: so it is a static binary at a host path the guest
sees (wqkit's cache), built by the host's C compiler (``build-essential``, which
`make setup` installs for the modules). What it needs from wqkit comes on the
kernel command line (:func:`init_options`); the rest is in its own comment.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from wqkit.errors import LabError
from wqkit.paths import build_atomically, cache_dir

SOURCE = Path(__file__).with_name("guest_init.c")
#: Host directories the guest must not write through to (tmpfs in the guest).
PRIVATE_DIRS = ("/var/log", "/var/tmp", "/var/cache", "/var/lib/apt")
#: Modules udev would have loaded that the lab uses: qemu_fw_cfg hands the kernel's vmcoreinfo
#: to QEMU, which drgn on the host needs to read the guest over QMP.
GUEST_MODULES = ("qemu_fw_cfg",)
CFLAGS = ("-O2", "-static", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror")


def init_options() -> list[str]:
    """Kernel command line words for the init (the kernel hands them to it as its environment)."""
    return [f"wqkit_private_dirs={':'.join(PRIVATE_DIRS)}", f"wqkit_modules={':'.join(GUEST_MODULES)}"]


def guest_init() -> Path:
    """The built init for the current source, built now if it is not yet (a fraction of a second)."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:16]
    binary = cache_dir() / "guest-init" / digest / "init"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None and not binary.is_file():
        raise LabError("no C compiler to build the lab's guest init: run `make setup` (build-essential)")
    return build_atomically(binary, lambda out: [str(compiler), *CFLAGS, "-o", str(out), str(SOURCE)],
                            "the lab's guest init")
