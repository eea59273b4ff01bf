"""The guest agent as one zip: agent.py and the compiled standard-library modules it imports.

The agent is the first Python the guest starts, over 9p, under TCG: each module
it imports is a lookup, a stat and a read of a ``.pyc`` through 9p, about 15 ms
each cold, and its imports (json, re, ctypes, socket, subprocess...) are about
forty of them, 0.6 s. In one zip they are one file: the guest's Python runs the
zip (``python3 -IS agent.zip``; its ``__main__.py`` is agent.py), and the zip's
modules come before the standard library's on ``sys.path``.

The zip is built by the guest's own interpreter (the host's /usr/bin/python3,
the same file the guest runs over 9p), so the bytecode matches it: it imports
agent.py's module-level imports, then writes every pure-Python standard-library
module that were not imported at start-up already, compiled. Cached per
agent.py and interpreter.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from wqkit.errors import LabError
from wqkit.paths import cache_dir

AGENT = Path(__file__).with_name("agent.py")

_BUILD = r"""
import sys
started = set(sys.modules)
import importlib.util, os
agent, out = sys.argv[1:3]
spec = importlib.util.spec_from_file_location("wqkit_agent", agent)
spec.loader.exec_module(importlib.util.module_from_spec(spec))
imported = sorted({getattr(sys.modules[name], "__file__", None) or "" for name in set(sys.modules) - started})
import marshal, zipfile
stdlib = os.path.dirname(os.__file__) + "/"
with zipfile.ZipFile(out + ".partial", "w") as bundle:
    for path in imported:
        if not (path.startswith(stdlib) and path.endswith(".py")) or "-packages/" in path:
            continue
        with open(path, "rb") as source:
            code = compile(source.read(), path, "exec", dont_inherit=True)
        # A .pyc header: magic, flags 0 (timestamp-based: no source in the zip, so not checked), 0, 0.
        bundle.writestr(path[len(stdlib):-3] + ".pyc", importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code))
    bundle.write(agent, "__main__.py")
os.replace(out + ".partial", out)
"""


def agent_bundle(python: str) -> Path:
    """The agent's zip for the guest interpreter ``python`` (built now if needed, a second)."""
    interpreter = Path(python).resolve()
    try:
        stat = interpreter.stat()
    except OSError:
        raise LabError(f"the guest's Python {python} is missing: run `make setup`") from None
    identity = f"{interpreter} {stat.st_size} {stat.st_mtime_ns}".encode()
    digest = hashlib.sha256(AGENT.read_bytes() + _BUILD.encode() + identity).hexdigest()[:16]
    bundle = cache_dir() / "agent" / digest / "agent.zip"
    if bundle.is_file():
        return bundle
    bundle.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([python, "-IS", "-c", _BUILD, str(AGENT), str(bundle)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"bundling the lab's agent with {python} failed: "
                       f"{(proc.stderr.strip().splitlines() or ['no error printed'])[-1]}")
    return bundle
