"""JupyterLab on the notebooks: the interactive workbench (``wqkit notebook``, ``make lab-notebook``).

JupyterLab runs from the project's venv, so its ``python3`` kernel is the
venv's interpreter with wqkit importable: no kernel to register.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from wqkit.paths import SOURCE_DIR

NOTEBOOKS = SOURCE_DIR / "notebooks"


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def jupyterlab_command(root: Path = NOTEBOOKS, port: int | None = None, token: str | None = None,
                       settings_dir: Path | None = None) -> list[str]:
    """The command that serves ``root`` in JupyterLab on localhost.

    ``token`` None lets JupyterLab make one (it prints the URL with it);
    ``settings_dir`` replaces the user's JupyterLab settings (a test's own).
    Root runs it with ``--allow-root``, which JupyterLab otherwise refuses.
    """
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port or free_port()}", f"--ServerApp.root_dir={root}"]
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if settings_dir is not None:
        cmd += [f"--LabApp.user_settings_dir={settings_dir}", f"--LabApp.workspaces_dir={settings_dir}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd
