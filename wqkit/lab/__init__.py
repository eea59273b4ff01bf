"""The lab: a VM booted with virtme-ng in which every kernel-side step runs."""

from wqkit.lab.choose import resolve_kernel
from wqkit.lab.kernel import STOCK_RELEASE, LabKernel
from wqkit.lab.provision import provision_debug_vmlinux, provision_kernel, resolve_release
from wqkit.lab.vm import LabSession

__all__ = ["STOCK_RELEASE", "LabKernel", "LabSession", "provision_debug_vmlinux", "provision_kernel", "resolve_kernel",
           "resolve_release"]
