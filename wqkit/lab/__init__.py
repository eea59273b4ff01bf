"""The lab: a VM booted with virtme-ng in which every kernel-side step runs."""

from wqkit.lab.kernel import STOCK_RELEASE, LabKernel, provision_debug_vmlinux, resolve_kernel
from wqkit.lab.vm import LabSession

__all__ = ["STOCK_RELEASE", "LabKernel", "LabSession", "provision_debug_vmlinux", "resolve_kernel"]
