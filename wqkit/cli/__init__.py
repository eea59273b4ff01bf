"""The ``wqkit`` command line: a thin layer over the library, one module per command group.

Every failure the user can act on is a WqkitError, printed as one line
(``wqkit: error: ...``) with a non-zero exit status; Ctrl-C and SIGTERM stop
the lab VM on the way out.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Sequence

from wqkit import __version__
from wqkit.cli import experiments, inspect, lab, study, trace
from wqkit.errors import WqkitError

EXAMPLES = """examples:
  wqkit lab smoke                       check the lab: boot, a module, drgn
  wqkit monitor                         the seed's wq_monitor.py, on the lab's kernel
  wqkit run insert_exec --nr 10000      an experiment, into runs/
  wqkit analyze runs/                   summaries and plots of runs
  wqkit trace workers                   create_worker() durations with bpftrace
  wqkit report notebooks/insert_exec.ipynb -p nr 1000
  wqkit study run studies/flags_latency.toml   a grid of runs on Dask, then: wqkit study analyze DIR
  wqkit COMMAND --help                  a command's options, with examples"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wqkit", description="A research workbench for Linux workqueues.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"wqkit {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    lab.add_commands(sub)
    experiments.add_commands(sub)
    trace.add_commands(sub)
    inspect.add_commands(sub)
    study.add_commands(sub)
    return parser


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except WqkitError as exc:       # a broken experiment declaration (WQKIT_EXPERIMENTS)
        print(f"wqkit: error: {exc}", file=sys.stderr)
        return 1
    # Ctrl-C and SIGTERM unwind through the context managers that stop the VM,
    # also when SIGINT was inherited as ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except WqkitError as exc:
        print(f"wqkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("wqkit: interrupted; the lab VM was stopped", file=sys.stderr)
        return 130
