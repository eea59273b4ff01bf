"""Lab inspection, guest side: load debug info once, then serve snapshots.

``python -m wqkit.inspect.guest --vmlinux FILE`` loads the kernel's debug
info (about 20 s under TCG) and answers one-line requests on a unix socket:
``snapshot`` (a Snapshot as JSON), ``walk`` (the benchmark's baseline) or
``quit``. Each answer carries ``seconds``, the time spent reading kernel
memory, and ``load_seconds``. The host reaches the socket through the lab
agent, so a request starts no process in the guest.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path

SOCKET = Path("/run/wqkit-inspect.sock")


def serve(vmlinux: Path) -> None:
    """Answer requests until ``quit``; if the debug info cannot be loaded, answer every request with why."""
    from wqkit.errors import WqkitError
    from wqkit.inspect.source import open_program

    start = time.perf_counter()
    prog, failure = None, None
    try:
        prog = open_program(vmlinux=vmlinux)
    except WqkitError as exc:
        failure = str(exc)
    load_seconds = time.perf_counter() - start
    SOCKET.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(SOCKET))
    server.listen(4)
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("rw") as stream:
            request = stream.readline().strip()
            if request == "quit":
                break
            answer = {"error": failure} if failure else answer_request(prog, request)
            answer["load_seconds"] = load_seconds
            stream.write(json.dumps(answer) + "\n")
    SOCKET.unlink(missing_ok=True)


def answer_request(prog, request: str) -> dict:
    """The answer to ``snapshot`` or ``walk``, timing the walk of kernel memory only (not the JSON)."""
    from wqkit.inspect.snapshot import take_snapshot

    if request not in ("snapshot", "walk"):
        return {"error": f"unknown request {request!r}"}
    start = time.perf_counter()
    try:
        result = take_snapshot(prog) if request == "snapshot" else plain_walk(prog)
        seconds = time.perf_counter() - start
        answer = result.to_dict() if request == "snapshot" else {"sum": result}
    except Exception as exc:  # noqa: BLE001 -- the host must get an answer, not a hang
        seconds = time.perf_counter() - start
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answer["seconds"] = seconds
    return answer


def plain_walk(prog) -> int:
    """The benchmark's baseline: walk the workqueue list and sum every pwq's stats."""
    from wqkit.inspect.helpers import for_each_pwq, for_each_workqueue

    return sum(int(stat) for wq in for_each_workqueue(prog) for pwq in for_each_pwq(wq)
               for stat in pwq.stats.read_())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vmlinux", type=Path, required=True)
    serve(parser.parse_args().vmlinux)


if __name__ == "__main__":
    main()
