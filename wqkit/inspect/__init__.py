"""Inspecting the kernel's workqueues with drgn: helpers, typed snapshots, monitors."""

from wqkit.inspect.model import PoolInfo, PwqInfo, Snapshot, WorkerInfo, WorkqueueInfo

__all__ = ["PoolInfo", "PwqInfo", "Snapshot", "WorkerInfo", "WorkqueueInfo"]
