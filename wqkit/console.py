"""Where progress goes: the terminal, never into a shared report.

Under ``wqkit report`` (which sets ``WQKIT_REPORT=1`` for the notebook's
kernel), progress lines and bars go to the kernel process's own stderr,
which is the terminal that started the report, so the HTML shows results
only. Anywhere else (a shell, JupyterLab) they go to ``sys.stderr`` as usual.
A study's Dask workers set ``WQKIT_NO_BARS=1``: their bars would interleave on
the study's terminal, whose own progress line says what runs.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

REPORT_ENV = "WQKIT_REPORT"
NO_BARS_ENV = "WQKIT_NO_BARS"


def bars_disabled() -> bool:
    """Whether progress bars are off in this process (read when a bar starts)."""
    return os.environ.get(NO_BARS_ENV) == "1"


def progress_stream() -> TextIO:
    """The stream for progress lines and bars."""
    if os.environ.get(REPORT_ENV) and sys.__stderr__ is not None:
        return sys.__stderr__
    return sys.stderr


def progress_line(message: str, prefix: str = "wqkit") -> None:
    """One progress line on :func:`progress_stream`."""
    print(f"{prefix}: {message}", file=progress_stream(), flush=True)
