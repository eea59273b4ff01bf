"""Where wqkit keeps its files: the source tree and the download/build cache."""

import os
from pathlib import Path

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
    old file or the new one, never half of one: a temporary file beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
