"""Snapshots over time: tables, plots, and the live ipywidgets dashboard of notebooks/monitor.ipynb."""

from __future__ import annotations

import base64
import io
import threading
import time
from typing import Callable

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from wqkit.inspect.model import Snapshot
from wqkit.inspect.monitor import select_workqueues
from wqkit.inspect.text import SCENARIOS, scenario_lines

Take = Callable[[], Snapshot]


def collect(take: Take, count: int, interval: float) -> list[Snapshot]:
    """``count`` snapshots, ``interval`` seconds apart (start to start)."""
    snapshots = []
    for i in range(count):
        start = time.monotonic()
        snapshots.append(take())
        if i + 1 < count:
            time.sleep(max(0.0, interval - (time.monotonic() - start)))
    return snapshots


def df_workers_per_cpu(snapshots: list[Snapshot]) -> pd.DataFrame:
    """Workers (and idle ones) per CPU at each snapshot; unbound pools as CPU -1."""
    rows = []
    for snap in snapshots:
        for cpu in sorted({p.cpu for p in snap.pools}):
            pools = [p for p in snap.pools if p.cpu == cpu]
            rows.append({"time": snap.time - snapshots[0].time, "cpu": cpu,
                         "workers": sum(p.nr_workers for p in pools), "idle": sum(p.nr_idle for p in pools)})
    return pd.DataFrame(rows)


def df_rates(snapshots: list[Snapshot], names: list[str] | None = None) -> pd.DataFrame:
    """Work items started and completed per second between consecutive snapshots, per workqueue."""
    rows = []
    for before, after in zip(snapshots, snapshots[1:]):
        dt = after.time - before.time
        for wq in select_workqueues(after, names or []):
            old = before.workqueue(wq.name, after.occurrence(wq))
            if old is None or wq.stats is None or old.stats is None or dt <= 0:
                continue
            rows.append({"time": after.time - snapshots[0].time, "workqueue": wq.name,
                         "started_per_s": (wq.started - old.started) / dt,
                         "completed_per_s": (wq.completed - old.completed) / dt})
    return pd.DataFrame(rows, columns=["time", "workqueue", "started_per_s", "completed_per_s"])


def plot_workers_per_cpu(snapshots: list[Snapshot]) -> Figure:
    """Workers per CPU over time (unbound pools as 'unbound')."""
    # pivot_table, not pivot: two snapshots of one instant (a vmcore read twice) must not fail the plot
    table = df_workers_per_cpu(snapshots).pivot_table(index="time", columns="cpu", values="workers", aggfunc="last")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for cpu in table.columns:
        ax.step(table.index, table[cpu], where="post", label="unbound" if cpu < 0 else f"cpu {cpu}")
    ax.set_xlabel("s since the first snapshot")
    ax.set_ylabel("workers")
    ax.legend(fontsize=7, ncol=4)
    ax.set_title(f"kworkers per CPU — {snapshots[-1].kernel_release}", fontsize=9)
    return fig


def plot_rates(snapshots: list[Snapshot], names: list[str] | None = None, top: int = 8) -> Figure:
    """Started work items per second over time for the busiest workqueues."""
    rates = df_rates(snapshots, names)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if not rates.empty:
        busiest = rates.groupby("workqueue")["started_per_s"].sum().nlargest(top).index
        for name in busiest:
            sel = rates[rates["workqueue"] == name]
            ax.plot(sel["time"], sel["started_per_s"], marker=".", label=name)
        ax.legend(fontsize=7, ncol=2)
    ax.set_xlabel("s since the first snapshot")
    ax.set_ylabel("work items started / s")
    ax.set_title(f"busiest workqueues — {snapshots[-1].kernel_release}", fontsize=9)
    return fig


class Dashboard:
    """A live view: refresh interval, workqueue filter and scenario; text and plots refresh in place.

    Nothing runs until the Start button is pressed, so the notebook also
    executes unattended (papermill), where only its static cells matter.
    The refresh loop runs in a thread of its own; it writes its text and
    plots by setting the ``Output`` widgets' ``outputs`` (their state, sent to
    the browser as any widget change is), never with ``with output:``, which
    captures only what the kernel prints for the cell executing *now* and so
    showed nothing from a background thread. A refresh that fails stops the
    loop and says why in the status line.
    """

    def __init__(self, take: Take, history: int = 120) -> None:
        import ipywidgets as widgets

        self.take = take
        self.history: list[Snapshot] = []
        self.limit = history
        self.interval = widgets.FloatSlider(value=2.0, min=0.5, max=30.0, step=0.5, description="interval s")
        self.names = widgets.Text(value="", placeholder="events kblockd ...", description="workqueues")
        self.scenario = widgets.Dropdown(options=SCENARIOS, value="NORMAL", description="scenario")
        self.running = widgets.ToggleButton(value=False, description="Start", icon="play")
        self.status = widgets.Label(value="stopped: press Start")
        self.text = widgets.Output(layout={"max_height": "400px", "overflow": "auto"})
        self.plots = widgets.Output()
        self.running.observe(self._toggle, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.interval, self.names, self.scenario, self.running]),
                                    self.status, self.plots, self.text])
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def _toggle(self, change) -> None:
        self.running.description = "Stop" if change["new"] else "Start"
        if change["new"] and (self._thread is None or not self._thread.is_alive()):
            self.status.value = "taking the first snapshot…"
            self._wake.clear()
            self._thread = threading.Thread(target=self._loop, daemon=True, name="wqkit-dashboard")
            self._thread.start()
        elif not change["new"]:
            self._wake.set()            # the loop stops now, not after its sleep

    def _loop(self) -> None:
        """Refresh every interval until stopped; the last status says how it ended."""
        while self.running.value:
            start = time.monotonic()
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 -- a live view shows its own errors, then stops
                self.status.value = f"refresh failed, stopped: {type(exc).__name__}: {exc}"
                self.running.value = False
                return
            self._wake.wait(max(0.0, self.interval.value - (time.monotonic() - start)))
        self.status.value = f"stopped after {len(self.history)} snapshots"

    def refresh(self) -> None:
        """Take one snapshot and redraw (from any thread)."""
        start = time.monotonic()
        snap = self.take()
        self.history = (self.history + [snap])[-self.limit:]
        names = self.names.value.split()
        previous = self.history[-2] if len(self.history) > 1 else None
        try:
            lines = scenario_lines(snap, self.scenario.value, select_workqueues(snap, names), previous=previous)
        except Exception as exc:  # noqa: BLE001 -- show a bad filter in the dashboard, keep running
            lines = [str(exc)]
        figures = [plot_workers_per_cpu(self.history), plot_rates(self.history, names)]
        self.plots.outputs = tuple(_png_output(fig) for fig in figures)
        self.text.outputs = ({"output_type": "stream", "name": "stdout", "text": "\n".join(lines) + "\n"},)
        self.status.value = (f"snapshot {len(self.history)} of {snap.kernel_release} at {time.strftime('%H:%M:%S')}"
                             f" ({time.monotonic() - start:.2f} s)")


def _png_output(fig: Figure) -> dict:
    """A figure as an Output widget's display_data entry (PNG), the figure closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": repr(fig)}}
