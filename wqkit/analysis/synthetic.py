"""Run directories made from given cycles: for tests and benchmarks of the analysis.

The result has the same files and schema as a measured run, with
``"target": "synthetic"`` in its meta.json so it is never mistaken for one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from wqkit.experiments.samples import COLUMNS


def write_synthetic_run(path: Path, cycles: np.ndarray, *, tsc_khz: int = 2_000_000,
                        cpu_queue: np.ndarray | None = None, cpu_exec: np.ndarray | None = None,
                        experiment: str = "insert_exec", overhead_cycles: float | None = None,
                        accel: str = "kvm", cpu_topology: dict | None = None) -> Path:
    """Write a run directory whose samples have exactly these ``cycles``."""
    n = len(cycles)
    zeros = np.zeros(n, dtype=np.uint16)
    t0 = np.arange(n, dtype=np.uint64) * np.uint64(100_000) + np.uint64(10**9)
    frame = pd.DataFrame({
        "seq": np.arange(n, dtype=np.uint32), "t0": t0, "t1": t0 + cycles.astype(np.uint64),
        "cycles": cycles.astype(np.int64),
        "cpu_queue": zeros if cpu_queue is None else cpu_queue.astype(np.uint16),
        "cpu_exec": zeros if cpu_exec is None else cpu_exec.astype(np.uint16),
        "pid": np.full(n, 42, dtype=np.uint32),
    })[COLUMNS]
    path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path / "samples.parquet", index=False)
    meta = {
        "experiment": experiment, "status": "ok", "error": None, "target": "synthetic",
        "kernel_release": "synthetic", "patched": False, "accel": accel, "cpus": 2, "cpu_model": "synthetic",
        "tsc_khz": tsc_khz, "parameters": {"nr": str(n)},
        "samples": {"expected": n, "produced": n, "collected": n, "dropped": 0, "exported": n},
    }
    if cpu_topology is not None:
        meta["cpu_topology"], meta["cpus"] = cpu_topology, len(cpu_topology["cpu"])
    if overhead_cycles is not None:
        meta["calibration"] = {"samples": 100, "median_cycles": overhead_cycles, "min_cycles": overhead_cycles}
    (path / "meta.json").write_text(json.dumps(meta, indent=2))
    return path
