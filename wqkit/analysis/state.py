"""Workqueue state over a run: what the host sampled from the guest's memory while the experiment ran
(``wqkit run ... --sample-state HZ``, ``state.parquet``).

Each sample carries the guest's TSC at its last tick (see wqkit.inspect.timeline),
so the state sits on the samples' own timeline: time 0 is the run's first
``t0``, and a state row is placed where it was read (see _with_time).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from wqkit.analysis.load import Run
from wqkit.errors import WqkitError

POOL_COLUMNS = ("workers", "idle", "running", "pending")


def load_state(run: Run) -> pd.DataFrame | None:
    """The raw rows of ``state.parquet``, or None when the run was not sampled."""
    path = run.path / "state.parquet"
    return pq.read_table(path).to_pandas() if path.is_file() else None


def _with_time(run: Run, state: pd.DataFrame) -> pd.DataFrame:
    """``state`` with ``t``: seconds from the run's first sample t0, on the guest's TSC.

    A row's ``tsc`` is the guest's last timekeeping update before the read (a tick ago or, on an
    idle guest whose tick stopped, seconds ago): a lower bound of the guest's TSC at
    ``host_time + clock_s``, when its clocks had been read (not at ``host_time``: a busy host may
    delay the read after it). The guest's TSC runs at tsc_khz per second of host time (TCG
    reads the host's TSC, KVM offsets it), so host time maps onto it by a line of that slope,
    raised onto the upper envelope of the rows: through the read that came closest after an
    update. A row then sits on the samples' timeline when its read began; its values were read
    within ``read_s``. (Rows recorded before ``clock_s`` was: ``host_time``.)
    """
    state = state.sort_values("sample").copy()
    origin = int(run.samples["t0"].min()) if len(run.samples) else int(state["tsc"].min())
    rate = run.tsc_khz * 1000.0
    host = state["host_time"].to_numpy(dtype=np.float64)
    clocks_read = host + (state["clock_s"].to_numpy(dtype=np.float64) if "clock_s" in state else 0.0)
    offset = np.max(state["tsc"].to_numpy(dtype=np.float64) - rate * clocks_read) if len(state) else 0.0
    state["t"] = (rate * host + offset - origin) / rate
    return state


def df_state(run: Run, kind: str = "pool") -> pd.DataFrame:
    """Per sample and pool (``kind="pool"``): workers, idle, running, pending; per sample and
    workqueue (``kind="workqueue"``): pending (nr_active), started, completed, started/s.
    Indexed by (t, id); ``t`` in seconds on the samples' timeline (see _with_time): when the
    read began; its values were read within ``read_s`` seconds after."""
    state = load_state(run)
    if state is None:
        raise WqkitError(f"{run.name}: no state.parquet (run it with --sample-state HZ)")
    rows = _with_time(run, state[state["kind"] == kind])
    if "read_s" not in rows:        # runs sampled before reads were timed
        rows["read_s"] = np.nan
    if kind == "pool":
        return rows.set_index(["t", "id"])[list(POOL_COLUMNS)].astype(int).assign(read_s=rows["read_s"].to_numpy())
    rows = rows.sort_values(["id", "t"])
    rows["started_per_s"] = rows.groupby("id")["started"].diff() / rows.groupby("id")["t"].diff()
    return rows.set_index(["t", "id"])[["pending", "started", "completed", "started_per_s", "read_s"]]


def plot_state(run: Run, pools: int = 4, workqueues: int = 5) -> Figure:
    """The pools that changed most (workers, idle, running, pending over time) and the
    started/s of the busiest workqueues, on the run's timeline."""
    pool_frame = df_state(run, "pool").reset_index()
    spread = pool_frame.groupby("id")["workers"].agg(lambda w: w.max() - w.min())
    busy = pool_frame.groupby("id")[["running", "pending"]].max().sum(axis=1)
    chosen = (spread * 1000 + busy).sort_values(ascending=False).index[:pools]
    wq_frame = df_state(run, "workqueue").reset_index()
    gained = wq_frame.groupby("id")["started"].agg(lambda s: s.max() - s.min()).sort_values(ascending=False)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for pool_id in chosen:
        rows = pool_frame[pool_frame["id"] == pool_id]
        line, = top.step(rows["t"], rows["workers"], where="post", label=f"pool {pool_id} workers")
        top.step(rows["t"], rows["idle"], where="post", linestyle=":", color=line.get_color(), label="idle")
        top.step(rows["t"], rows["pending"], where="post", linestyle="--", color=line.get_color(), label="pending")
    top.set_ylabel("workers / items")
    top.legend(fontsize=6, ncol=3)
    for name in gained.index[:workqueues]:
        rows = wq_frame[wq_frame["id"] == name]
        bottom.plot(rows["t"], rows["started_per_s"], label=name)
    bottom.set_ylabel("work items started / s")
    bottom.set_xlabel("s since the run's first work item (guest TSC)")
    bottom.legend(fontsize=6)
    info = run.meta.get("state_sampling", {})
    fig.suptitle(f"Workqueue state during {run.label}: {info.get('achieved_hz', '?')} samples/s from the host "
                 f"(QMP)\n{run.origin}", fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.09, hspace=0.08)
    return fig
