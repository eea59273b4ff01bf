"""Where wqkit keeps its files: the source tree and the download/build cache."""

import os
import subprocess
import threading
from pathlib import Path
from typing import Callable

from wqkit.errors import WqkitError

#: The wqkit source tree (modules/, notebooks/, ... live beside the package).
SOURCE_DIR = Path(__file__).resolve().parent.parent
MODULES_DIR = SOURCE_DIR / "modules"


def cache_dir() -> Path:
    """The cache for lab kernels, debug vmlinux files and module builds.

    ``$WQKIT_CACHE`` overrides the default ``~/.cache/wqkit``. It must be
    visible inside the lab guest, which sees the host's root file system
    read-only except for tmpfs-backed paths such as /tmp.
    """
    env = os.environ.get("WQKIT_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "wqkit"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader (or a resumed study after a crash) sees the
    old file or the new one, never half of one: a temporary file beside it (one per process and
    thread, so that two writers never share one), then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def build_atomically(path: Path, command: Callable[[Path], list[str]], what: str) -> Path:
    """``path`` built by ``command(output)`` unless it is there already: into a partial file of
    this process and thread, renamed whole (study workers of one host may build it at the same
    moment). A failed build is a one-line error naming ``what``, with the compiler's first error."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    proc = subprocess.run(command(partial), capture_output=True, text=True)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        detail = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[-200:])
        raise WqkitError(f"building {what} failed: {detail}")
    partial.replace(path)
    return path
