"""The live dashboard of notebooks/monitor.ipynb as its widgets hold it, on a recorded snapshot.

Its refresh runs in a background thread; what the browser shows is the widgets' state (the
Output widgets' ``outputs``, the status label), so that is what is checked here."""

import base64
import copy
import json
import time
from pathlib import Path

from wqkit.inspect.dashboard import Dashboard
from wqkit.inspect.model import Snapshot

RECORDED = json.loads((Path(__file__).parent / "data" / "snapshot-6.12-tcg.json").read_text())


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_start_refreshes_text_plots_and_status_from_its_thread():
    taken = []

    def take() -> Snapshot:
        taken.append(1)
        data = copy.deepcopy(RECORDED)
        data["time"] += len(taken)
        return Snapshot.from_dict(data)

    live = Dashboard(take)
    live.interval.value = 0.5
    assert live.status.value.startswith("stopped") and not live.text.outputs
    live.running.value = True                          # what pressing Start does
    _wait(lambda: len(taken) >= 2 and live.status.value.startswith("snapshot 2"))
    live.running.value = False
    _wait(lambda: not live._thread.is_alive())
    text = "".join(o["text"] for o in live.text.outputs)
    assert live.running.description == "Start" and "stopped after" in live.status.value
    workqueues = {wq["name"] for wq in RECORDED["workqueues"]}
    assert sum(name in text for name in workqueues) >= len(workqueues) // 2, text[:500]
    images = [o["data"]["image/png"] for o in live.plots.outputs]
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)


def test_a_failing_refresh_stops_and_says_why():
    def take() -> Snapshot:
        raise OSError("QMP socket closed")

    live = Dashboard(take)
    live.running.value = True
    _wait(lambda: not live.running.value)
    assert live.status.value == "refresh failed, stopped: OSError: QMP socket closed"
    assert live.running.description == "Start"
