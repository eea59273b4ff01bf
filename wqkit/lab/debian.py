"""Fetching one file out of a Debian package, once, into wqkit's cache.

The lab needs a few large files that Debian ships inside packages nobody
needs installed: the DWARF vmlinux of the ``-dbg`` package, the kernel
source tarballs (``linux-source-6.12``, ``linux-source-7.3``). ``apt-get
download`` fetches a package through the machine's own apt sources, or, for
a suite the machine does not list (trixie-backports on bookworm), through a
private apt configuration in the cache: the host's sources stay as they
were. Only the member is kept.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from wqkit.errors import WqkitError
from wqkit.paths import cache_dir

ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
#: A private suite's package lists are fetched again when older than this.
LISTS_MAX_AGE_S = 24 * 3600


def archive_uri() -> str:
    """The Debian archive this machine's apt uses (its first non-security entry), so that
    wqkit reads a suite from the same mirror and never names a host of its own."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        text = path.read_text() if path.is_file() else ""
        for uri in re.findall(r"^URIs:\s*(\S+)|^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE):
            found = uri[0] or uri[1]
            if "security" not in found:
                return found
    raise WqkitError("no Debian archive found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")


def suite_options(suite: str) -> list[str]:
    """apt options that read only ``suite`` of Debian's archive, from lists kept in the cache.

    The lists are fetched (no root needed) the first time and once a day after.
    """
    home = cache_dir() / "apt" / suite
    sources = home / "sources.list"
    options = [f"-oDir::Etc::sourcelist={sources}", "-oDir::Etc::sourceparts=-",
               f"-oDir::State::Lists={home / 'lists'}", f"-oDir::State::status={home / 'status'}",
               f"-oDir::Cache={home / 'cache'}", "-oDebug::NoLocking=1"]
    fetched = list((home / "lists").glob(f"*_dists_{suite}_InRelease"))
    if fetched and time.time() - fetched[0].stat().st_mtime < LISTS_MAX_AGE_S:
        return options
    if not ARCHIVE_KEYRING.is_file():
        raise WqkitError(f"{ARCHIVE_KEYRING} is missing: install debian-archive-keyring (make setup)")
    (home / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (home / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (home / "status").touch()
    sources.write_text(f"deb [signed-by={ARCHIVE_KEYRING}] {archive_uri()} {suite} main\n")
    proc = subprocess.run(["apt-get", "-q", *options, "update"], capture_output=True, text=True)
    if proc.returncode or not list((home / "lists").glob(f"*_dists_{suite}_InRelease")):
        detail = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise WqkitError(f"could not read Debian's {suite} package lists: {detail}")
    return options


def download_packages(packages: list[str], dest: Path, suite: str | None = None) -> list[Path]:
    """``apt-get download`` the packages into ``dest`` (no root needed); return the .deb files.

    ``suite``: take them from that suite of Debian's archive (see :func:`suite_options`)
    instead of the machine's apt sources."""
    if shutil.which("apt-get") is None:
        raise WqkitError(f"apt-get not found: wqkit takes {', '.join(packages)} from Debian's archive")
    options = suite_options(suite) if suite else []
    proc = subprocess.run(["apt-get", "download", "-q", *options, *packages], cwd=dest,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    debs = sorted(dest.glob("*.deb"))
    if proc.returncode or len(debs) != len(packages):
        errors = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("W:")]
        raise WqkitError(f"apt-get download {' '.join(packages)} failed: {(errors or ['no output'])[-1]}")
    return debs


def extract_from_package(package: str, member: str, dest: Path,
                         progress: Callable[[str], None] = print, suite: str | None = None) -> Path:
    """Download ``package`` and extract its file ``member`` to ``dest`` (atomically).

    Does nothing when ``dest`` exists. ``member`` is the path inside the
    package's data archive, e.g. ``./usr/src/linux-source-6.12.tar.xz``;
    ``suite`` as for :func:`download_packages`.
    """
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        progress(f"downloading {package}")
        deb = download_packages([package], Path(tmp), suite)[0]
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
