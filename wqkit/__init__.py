"""wqkit: a research workbench for the Linux kernel's workqueues."""

__version__ = "0.1.0"
