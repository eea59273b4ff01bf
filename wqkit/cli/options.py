"""What several commands share: the target and lab options, and options made from declarations."""

from __future__ import annotations

import argparse
import sys

from wqkit.runs.spec import ANY, Experiment, Param
from wqkit.lab import resolve_kernel
from wqkit.lab.accel import ACCELS
from wqkit.errors import WqkitError
from wqkit.lab.topology import SHAPES, parse_topology
from wqkit.lab.vm import CPUS_RANGE, DEFAULT_CPUS, DEFAULT_MEMORY, TCG_THREADS
from wqkit.target import TARGETS

#: Where run directories go unless --out says otherwise.
RUNS_DIR = "runs"


def progress(message: str) -> None:
    """A progress line on stderr, so that stdout holds only results."""
    print(f"wqkit: {message}", file=sys.stderr, flush=True)


def add_lab_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that boots the lab."""
    group = parser.add_argument_group("lab VM")
    group.add_argument("--kernel", metavar="K", help="lab kernel: 'stock' (default), a provisioned release "
                       "or its series (6.1), or a built kernel tree")
    group.add_argument("--cpus", type=int, metavar="N",
                       help=f"guest CPUs, {CPUS_RANGE[0]} to {CPUS_RANGE[1]} (default {DEFAULT_CPUS}; "
                       "a --topology's otherwise)")
    group.add_argument("--topology", metavar="SHAPE",
                       help="the guest machine's shape: sockets=S,dies=D,cores=C,threads=T,numa=N (keys left out "
                       f"are 1), or {', '.join(SHAPES)}; TCG gives any shape, its timings are emulation's")
    group.add_argument("--memory", default=DEFAULT_MEMORY, metavar="M", help=f"guest memory (default {DEFAULT_MEMORY})")
    group.add_argument("--accel", choices=ACCELS, default="auto",
                       help="auto (default) uses KVM only when it really works, else TCG")
    group.add_argument("--tcg-threads", choices=TCG_THREADS, default="multi",
                       help="TCG: one host thread per vCPU (multi, default) or vCPUs taking turns on one "
                       "(single: no boot-time int3 race, but serialised vCPUs)")


def add_target_options(parser: argparse.ArgumentParser, out: bool = True) -> None:
    """--target, the lab's options and (for commands that write runs) --out."""
    parser.add_argument("--target", choices=TARGETS, default="lab",
                        help="lab (default): a VM; local: this machine's running kernel")
    if out:
        parser.add_argument("--out", default=RUNS_DIR, metavar="DIR",
                            help=f"where run directories go (default {RUNS_DIR}/)")
    add_lab_options(parser)


def lab_options(args: argparse.Namespace) -> dict:
    """The lab VM's options of a command line (for a lab target)."""
    topology = parse_topology(args.topology) if args.topology else None
    if topology is not None and args.cpus is not None and args.cpus != topology.cpus:
        raise WqkitError(f"--cpus {args.cpus} and --topology {args.topology} ({topology.cpus} CPUs) disagree")
    cpus = topology.cpus if topology is not None else args.cpus if args.cpus is not None else DEFAULT_CPUS
    return dict(kernel=resolve_kernel(args.kernel), cpus=cpus, memory=args.memory, accel=args.accel,
                tcg_threads=args.tcg_threads, topology=topology)


def target_options(args: argparse.Namespace) -> dict:
    """What the library's run functions take: the target's name and, for the lab, its options."""
    return {"target_name": args.target, **(lab_options(args) if args.target == "lab" else {})}


def _value(param: Param):
    """argparse's type for a declared parameter: an integer (or ``any``), a number, or the text as
    given; the declaration checks the value later, with a one-line error."""
    def convert(text: str) -> int | float | str:
        if param.type in ("flags", "cpulist", "choice", "names", "experiment") or \
                (param.any is not None and text.strip().lower() == ANY):
            return text
        if param.type == "float":
            try:
                return float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        try:
            return int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer"
                                             + (f" nor {ANY!r}" if param.any is not None else "")) from None
    convert.__name__ = param.type
    return convert


def add_param_options(parser: argparse.ArgumentParser, params: tuple[Param, ...],
                      title: str | None = None) -> None:
    """One option per declared parameter, with the declaration's help; not given: None (the
    declared default). Each value lands in ``exp_NAME``; a ``names`` parameter whose flag has no
    dashes is a positional list."""
    group = parser.add_argument_group(title) if title else parser
    for param in params:
        if param.type == "bool":
            group.add_argument(param.cli_flag, dest=f"exp_{param.name}", action="store_true", default=None,
                               help=param.describe())
        elif param.positional:
            group.add_argument(f"exp_{param.name}", nargs="*", metavar=param.flag, help=param.describe())
        elif param.type == "choice":
            group.add_argument(param.cli_flag, dest=f"exp_{param.name}", choices=param.choices,
                               help=param.describe())
        else:
            group.add_argument(param.cli_flag, dest=f"exp_{param.name}", type=_value(param),
                               metavar={"flags": "FLAGS", "cpulist": "CPUS", "float": "S" if param.unit == "s"
                                        else "X", "names": "NAMES"}.get(param.type, "N"),
                               help=param.describe())


def param_values(args: argparse.Namespace, params: tuple[Param, ...]) -> dict:
    """The values of those options, keyed by parameter name (None: not given)."""
    return {p.name: getattr(args, f"exp_{p.name}") for p in params}


def experiment_values(args: argparse.Namespace, exp: Experiment) -> dict:
    return param_values(args, exp.options)
