"""Choosing the lab's accelerator: KVM when it really works, TCG otherwise.

On our machines ``/dev/kvm`` opens but nested KVM fails inside QEMU, so an
open device proves nothing: the probe boots the lab kernel once under KVM and
runs ``true``. The verdict is cached per host kernel and QEMU version.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from typing import Callable

from wqkit.errors import WqkitError
from wqkit.paths import cache_dir

ACCELS = ("auto", "kvm", "tcg")
PROBE_TIMEOUT = 120.0
#: The KVM probe's verdict per host kernel and QEMU version, in the cache.
VERDICTS = "kvm-probe.json"


def qemu_version() -> str:
    """The first line of ``qemu-system-x86_64 --version``."""
    try:
        out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise WqkitError(f"qemu-system-x86_64 is not usable ({exc}); run `make setup`") from None
    return out.stdout.splitlines()[0]


def kvm_device_usable() -> bool:
    """Whether /dev/kvm exists and opens read-write."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def choose_accel(requested: str, probe: Callable[[], bool]) -> str:
    """Resolve ``auto`` to ``kvm`` or ``tcg``; ``probe`` boots the lab under KVM.

    An explicit ``kvm`` is honoured as asked (and fails at boot if KVM is
    broken); ``auto`` uses the cached probe verdict, probing once if needed.
    """
    if requested not in ACCELS:
        raise WqkitError(f"unknown accelerator {requested!r}: choose one of {', '.join(ACCELS)}")
    if requested != "auto":
        return requested
    if not kvm_device_usable():
        return "tcg"
    key, verdicts = _verdicts()
    if key not in verdicts:
        verdicts[key] = "kvm" if probe() else "tcg"
        (cache_dir() / VERDICTS).write_text(json.dumps(verdicts, indent=1) + "\n")
    return verdicts[key]


def expected_accel() -> str:
    """What ``auto`` chooses on this host, without probing: ``tcg``, ``kvm``, or ``kvm?`` (a
    usable /dev/kvm whose probe has not run yet)."""
    if not kvm_device_usable():
        return "tcg"
    key, verdicts = _verdicts()
    return verdicts.get(key, "kvm?")


def _verdicts() -> tuple[str, dict[str, str]]:
    """This host kernel's and QEMU's key, and the cached probe verdicts."""
    path = cache_dir() / VERDICTS
    return f"{platform.release()} | {qemu_version()}", json.loads(path.read_text()) if path.exists() else {}
