"""Fetching one file out of a Debian package, once, into wqkit's cache.

The lab needs a few large files that Debian ships inside packages nobody
needs installed: the DWARF vmlinux of the ``-dbg`` package, the kernel
source tarball of ``linux-source-6.12``. ``apt-get download`` fetches the
package through the machine's own apt sources; only the member is kept.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from wqkit.errors import WqkitError


def download_packages(packages: list[str], dest: Path) -> list[Path]:
    """``apt-get download`` the packages into ``dest`` (no root needed); return the .deb files."""
    if shutil.which("apt-get") is None:
        raise WqkitError(f"apt-get not found: wqkit takes {', '.join(packages)} from Debian's archive")
    proc = subprocess.run(["apt-get", "download", "-q", *packages], cwd=dest,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    debs = sorted(dest.glob("*.deb"))
    if proc.returncode or len(debs) != len(packages):
        errors = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("W:")]
        raise WqkitError(f"apt-get download {' '.join(packages)} failed: {(errors or ['no output'])[-1]}")
    return debs


def extract_from_package(package: str, member: str, dest: Path,
                         progress: Callable[[str], None] = print) -> Path:
    """Download ``package`` and extract its file ``member`` to ``dest`` (atomically).

    Does nothing when ``dest`` exists. ``member`` is the path inside the
    package's data archive, e.g. ``./usr/src/linux-source-6.12.tar.xz``.
    """
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        progress(f"downloading {package}")
        deb = download_packages([package], Path(tmp))[0]
        progress(f"extracting {member} into {dest}")
        partial = Path(tmp) / dest.name
        with open(partial, "wb") as out:
            fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
            tar = subprocess.run(["tar", "-xO", member], stdin=fsys.stdout, stdout=out, stderr=subprocess.PIPE)
            fsys.stdout.close()
            fsys.wait()
        if fsys.returncode or tar.returncode or partial.stat().st_size == 0:
            raise WqkitError(f"could not extract {member} from {deb.name}: {tar.stderr.decode().strip()}")
        partial.rename(dest)
    return dest
