"""The lab agent's bundle: ``agent.py`` and the standard-library modules it imports, compiled
once into wqkit's cache by the guest's own interpreter, which the guest reads in one go
(``agent_start.py`` says why and how). Rebuilt when the agent, its starter or the interpreter
changes, or any bundled module's source (an upgraded python3.11 package)."""

from __future__ import annotations

import ast
import hashlib
import marshal
from pathlib import Path

from wqkit.paths import build_atomically, cache_dir

AGENT = Path(__file__).with_name("agent.py")
AGENT_START = Path(__file__).with_name("agent_start.py")
#: The agent's interpreter in the guest: Debian's, on the shared root (stdlib only).
GUEST_PYTHON = "/usr/bin/python3"


def agent_imports() -> list[str]:
    """Every module ``agent.py`` imports, at its top or inside a function."""
    tree = ast.parse(AGENT.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return sorted(names)


def _is_current(bundle: Path) -> bool:
    """Whether every module in ``bundle`` still has the source it was compiled from."""
    for _, _, source, size, mtime_ns in marshal.loads(bundle.read_bytes()).values():
        try:
            stat = Path(source).stat()
        except OSError:
            return False
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            return False
    return True


def guest_command() -> list[str]:
    """The command that starts the agent in the guest, its bundle built now if it is not yet
    (a fraction of a second)."""
    python = Path(GUEST_PYTHON).resolve()
    stat = python.stat()
    key = hashlib.sha256(b"\0".join([AGENT.read_bytes(), AGENT_START.read_bytes(), str(python).encode(),
                                     str(stat.st_size).encode(), str(stat.st_mtime_ns).encode()])).hexdigest()[:16]
    bundle = cache_dir() / "agent" / key / "agent.bundle"
    if bundle.is_file() and not _is_current(bundle):
        bundle.unlink(missing_ok=True)
    build_atomically(bundle, lambda out: [GUEST_PYTHON, "-IS", str(AGENT_START), "build", str(out), str(AGENT),
                                          *agent_imports()], "the lab agent's bundle")
    # -IS: isolated, no site (site's scan of dist-packages reads directories over 9p).
    return [GUEST_PYTHON, "-IS", str(AGENT_START), "run", str(bundle)]
