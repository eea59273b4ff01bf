"""The lab guest's init: ``guest_init.c`` built once per source, static, into wqkit's cache.

The guest runs it as PID 1 straight from the host's root file system (over 9p),
before anything is mounted: so it is a static binary at a host path the guest
sees (wqkit's cache), built by the host's C compiler (``build-essential``, which
`make setup` installs for the modules). What it needs from wqkit comes on the
kernel command line (:func:`init_options`); the rest is in its own comment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from wqkit.errors import LabError
from wqkit.paths import cache_dir

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
    if binary.is_file():
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise LabError("no C compiler to build the lab's guest init: run `make setup` (build-essential)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    # Study workers of one host may build it at the same moment: each into its own file, renamed whole.
    partial = binary.with_name(f"init.{os.getpid()}.{threading.get_ident()}.partial")
    proc = subprocess.run([compiler, *CFLAGS, "-o", str(partial), str(SOURCE)], capture_output=True, text=True)
    if proc.returncode != 0:
        detail = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[-200:])
        raise LabError(f"building the lab's guest init failed: {detail}")
    partial.replace(binary)
    return binary
