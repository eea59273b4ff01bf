"""Tracers of the workqueue code: bpftrace programs shipped as .bt files, BCC programs as C text."""

from pathlib import Path

#: bpftrace programs, one file per question.
BPFTRACE_DIR = Path(__file__).with_name("bpftrace")
