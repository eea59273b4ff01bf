"""``wqkit monitor``: workqueues, pools and workers as the kernel holds them (the seed's wq_monitor.py)."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack

from wqkit.cli.options import add_target_options, lab_options
from wqkit.errors import WqkitError

EXAMPLES = """examples:
  wqkit monitor                                 every workqueue of the lab's kernel, once
  wqkit monitor events_unbound -i 1 -m 10       one workqueue, every second, 10 times
  wqkit monitor -s ALL_POOLWORKQUEUES -a        the pools, the active ones only
  wqkit monitor --format json --via guest       drgn inside the guest, as JSON
  sudo wqkit monitor --target local             this machine's running kernel
  wqkit monitor --core vmcore --vmlinux vmlinux a crash dump"""


def cmd_monitor(args: argparse.Namespace) -> int:
    from wqkit.cli.options import progress
    from wqkit.inspect.monitor import monitor
    from wqkit.inspect.sources import snapshot_source

    if args.interval < 0 or args.max_iterations < 0:
        raise WqkitError("--interval and --max-iterations must not be negative")
    take = snapshot_source(target=args.target, core=args.core or "", vmlinux=args.vmlinux or "", via=args.via,
                           consistent=args.consistent, qmp=args.qmp or "", qmp_control=args.qmp_control or "",
                           progress=progress, **(lab_options(args) if args.target == "lab" else {}))
    with ExitStack() as stack:
        out = stack.enter_context(open(args.output, "w")) if args.output else sys.stdout
        monitor(take, out, names=args.workqueues, interval=args.interval, max_iterations=args.max_iterations,
                scenario=args.scenario, verbose=args.verbose, active_only=args.show_active_pool, fmt=args.format)
    return 0


def add_monitor_options(parser: argparse.ArgumentParser) -> None:
    """The options of the seed's ``wq_monitor.py``, with their meanings."""
    from wqkit.inspect.text import SCENARIOS

    parser.add_argument("workqueues", nargs="*", metavar="WORKQUEUE",
                        help='a name of the workqueue, can be multiple, e.g. "wq1 wq2", if not specified, '
                        "all workqueues will be printed")
    parser.add_argument("-i", "--interval", type=float, default=0.0, metavar="SECS",
                        help="Monitoring interval (0 to print once and exit)")
    parser.add_argument("-m", "--max-iterations", type=int, default=0, metavar="N",
                        help="Maximum number of iterations (0 for infinite)")
    parser.add_argument("-v", "--verbose", action="store_true", help="Print verbose information")
    parser.add_argument("-o", "--output", metavar="FILE", help="Output file to write the results (default: stdout)")
    parser.add_argument("-a", "--show-active-pool", action="store_true",
                        help="Show active worker pools, only works with --scenario=all_poolworkqueues")
    parser.add_argument("-s", "--scenario", choices=SCENARIOS, default="NORMAL", type=str.upper,
                        help="Scenario to run")


def add_commands(sub) -> None:
    from wqkit.inspect.lab import VIAS
    from wqkit.inspect.monitor import FORMATS

    mon = sub.add_parser("monitor", help="print workqueue information (the seed's drgn wq_monitor.py)",
                         description="Print workqueue information.", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_monitor_options(mon)
    mon.add_argument("--format", choices=FORMATS, default="text", help="text (the seed's layout), json or csv")
    mon.add_argument("--core", metavar="FILE", help="read a vmcore instead of a running kernel")
    mon.add_argument("--vmlinux", metavar="FILE", help="the kernel's debug vmlinux (for --core or local)")
    mon.add_argument("--via", choices=VIAS, default="ram",
                     help="lab only: drgn on the host reading the guest's RAM mapped into it (ram, default: "
                     "nothing runs in the guest) or over QMP (qmp), drgn inside the guest (guest), or a memory "
                     "dump read on the host (vmcore)")
    mon.add_argument("--consistent", action="store_true",
                     help="ram, qmp: stop the guest's vCPUs around each read (the pause is reported)")
    mon.add_argument("--qmp", metavar="SOCKET", help="read any QEMU guest started with -qmp unix:SOCKET,server=on "
                     "and -device vmcoreinfo (with --vmlinux)")
    mon.add_argument("--qmp-control", metavar="SOCKET",
                     help="with --qmp --consistent: a second QMP socket of the same QEMU, for stop/cont")
    add_target_options(mon, out=False)
    mon.set_defaults(func=cmd_monitor)
