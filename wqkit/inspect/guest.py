"""Lab inspection, guest side: load debug info once, then serve snapshots.

``python -m wqkit.inspect.guest serve --vmlinux FILE`` loads the kernel's
debug info (about 25 s under TCG) and answers requests on a unix socket;
``python -m wqkit.inspect.guest snapshot`` prints one snapshot as JSON. The
client imports neither drgn nor pandas, so each request costs little.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

SOCKET = Path("/run/wqkit-inspect.sock")
ERROR_FILE = Path("/run/wqkit-inspect.error")


def serve(vmlinux: Path) -> None:
    from wqkit.errors import WqkitError
    from wqkit.inspect.snapshot import take_snapshot
    from wqkit.inspect.source import open_program

    start = time.perf_counter()
    try:
        prog = open_program(vmlinux=vmlinux)
    except WqkitError as exc:
        ERROR_FILE.write_text(str(exc))
        raise SystemExit(1) from None
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
            start = time.perf_counter()
            try:
                # Time the walk of kernel memory only, not the JSON encoding.
                result = take_snapshot(prog) if request == "snapshot" else plain_walk(prog)
                seconds = time.perf_counter() - start
                answer = result.to_dict() if request == "snapshot" else {"sum": result}
            except Exception as exc:  # noqa: BLE001 -- the host must get an answer, not a hang
                seconds = time.perf_counter() - start
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            answer["seconds"] = seconds
            answer["load_seconds"] = load_seconds
            stream.write(json.dumps(answer) + "\n")
    SOCKET.unlink(missing_ok=True)


def plain_walk(prog) -> int:
    """The benchmark's baseline: walk the workqueue list and sum every pwq's stats."""
    from wqkit.inspect.helpers import for_each_pwq, for_each_workqueue

    return sum(int(stat) for wq in for_each_workqueue(prog) for pwq in for_each_pwq(wq)
               for stat in pwq.stats.read_())


def request(op: str, timeout: float) -> str:
    """Send ``op`` to the server, waiting for it to come up; return its answer line."""
    deadline = time.monotonic() + timeout
    while True:
        if ERROR_FILE.exists():
            raise SystemExit(f"wqkit inspect server failed: {ERROR_FILE.read_text()}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(str(SOCKET))
                with conn.makefile("rw") as stream:
                    stream.write(op + "\n")
                    stream.flush()
                    return stream.readline()
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise SystemExit(f"wqkit inspect server not up after {timeout:g} s") from None
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="op", required=True)
    serve_parser = sub.add_parser("serve")
    serve_parser.add_argument("--vmlinux", type=Path, required=True)
    for op in ("snapshot", "walk", "quit"):
        sub.add_parser(op).add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if args.op == "serve":
        serve(args.vmlinux)
    else:
        sys.stdout.write(request(args.op, args.timeout))
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
