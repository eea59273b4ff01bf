"""``wqkit lab``: provision and build lab kernels, boot the lab, run commands in it."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from wqkit.cli.options import add_lab_options, lab_options, progress
from wqkit.errors import WqkitError
from wqkit.lab import LabSession, provision_kernel, resolve_kernel, resolve_release
from wqkit.lab.kernel_source import DEFAULT_SERIES, SOURCE_SUITES, built_only, checkpatch
from wqkit.target import LabTarget

EXAMPLES = """examples:
  wqkit lab provision                       Debian's 6.12 kernel, headers and debug vmlinux, into the cache
  wqkit lab run -- uname -r                 boot the lab and run a command in it
  wqkit lab run --kernel 6.1 -- cat /proc/cmdline
  wqkit lab kernel build --patched          the kernel with linux_patch_exp/ (boot it with --kernel patched)
  wqkit lab kernel build --debug            KASAN, UBSAN, lockdep, kmemleak... (test modules: --kernel debug)
  wqkit lab provision --kernel 7.3          Linux 7.3, built from Debian's source (boot it with --kernel 7.3)
  wqkit lab smoke                           a module, its work items and drgn's view of them
  wqkit lab up                              keep a lab running: later runs attach to it (wqkit lab down)"""


def cmd_lab_run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise WqkitError("wqkit lab run: give a command after --, e.g. wqkit lab run -- uname -r")
    from wqkit.lab.kept import attach

    options = dict(lab_options(args), rwdirs=args.rwdir)
    with attach(**options) or LabSession(**options) as lab:
        result = lab.run(shlex.join(command) if len(command) > 1 else command[0], timeout=args.timeout)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(f"lab: exit status {result.returncode} ({lab.guest_release}, {lab.accel.upper()}, "
              f"boot {lab.boot_seconds:.1f} s)", file=sys.stderr)
        return result.returncode


def cmd_lab_info(args: argparse.Namespace) -> int:
    kernel = resolve_kernel(args.kernel)
    info = {
        "release": kernel.release,
        "patched": kernel.patched,
        "variant": kernel.variant,
        "image": str(kernel.image),
        "image_present": kernel.image.exists(),
        "kbuild_dir": str(kernel.build_dir),
        "kbuild_present": (kernel.build_dir / "Makefile").exists(),
        "debug_vmlinux": str(kernel.debug_vmlinux),
        "debug_vmlinux_present": kernel.debug_vmlinux.is_file(),
    }
    print(json.dumps(info, indent=2))
    return 0


def cmd_lab_provision(args: argparse.Namespace) -> int:
    from wqkit.lab.build import build_kernel

    if built_only(args.kernel or ""):
        kernel = build_kernel("vanilla", progress=progress, series=args.kernel).kernel()
    else:
        kernel = provision_kernel(resolve_release(args.kernel), progress=progress)
    print(f"lab kernel {kernel.label}: image {kernel.image}, Kbuild {kernel.build_dir}, "
          f"debug vmlinux {kernel.debug_vmlinux}")
    print(f"checkpatch: {checkpatch(progress=progress)}")
    return 0


def cmd_lab_kernel_build(args: argparse.Namespace) -> int:
    from wqkit.lab.build import build_kernel

    if args.jobs is not None and args.jobs < 1:
        raise WqkitError("--jobs must be at least 1")
    build = build_kernel(args.variant, jobs=args.jobs, config_only=args.config_only, progress=progress,
                         series=args.series)
    print(build.out / ".config" if args.config_only else f"{build.kernel().label}: {build.out}")
    return 0


def cmd_lab_smoke(args: argparse.Namespace) -> int:
    from wqkit.experiments.smoke import run_smoke

    with LabTarget(**lab_options(args)) as target:
        report = run_smoke(target, nr=args.nr, progress=progress)
    print(report.to_json() if args.json else report.summary())
    return 0 if report.work_items_executed == report.work_items_queued else 1


def cmd_lab_up(args: argparse.Namespace) -> int:
    from wqkit.lab import kept

    options = lab_options(args)
    record = kept.up(args.kernel, options["cpus"], args.memory, args.accel, args.tcg_threads, options["topology"],
                     progress=progress)
    print(f"kept lab up: {record['label']} under {record['accel'].upper()} ({record['cpus']} CPUs, "
          f"{record['memory']}), booted in {record['boot_seconds']:.1f} s; runs, notebooks and papermill "
          f"with these options use it; `wqkit lab down` stops it")
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    from wqkit.lab import kept

    record = kept.down()
    print(f"kept lab stopped ({record['label']})" if record else "no kept lab was up")
    return 0


def add_commands(sub) -> None:
    lab = sub.add_parser("lab", help="the lab VM: provision kernels, run commands", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    lab_sub = lab.add_subparsers(dest="lab_cmd", required=True, metavar="ACTION")
    run = lab_sub.add_parser("run", help="boot the lab and run a command in it",
                             usage="wqkit lab run [options] -- CMD [ARG ...]")
    add_lab_options(run)
    run.add_argument("--timeout", type=float, default=600.0, metavar="S",
                     help="kill the command (and fail) after S seconds (default 600)")
    run.add_argument("--rwdir", action="append", default=[], metavar="DIR",
                     help="host directory the guest may write, at the same path (repeatable)")
    run.add_argument("command", nargs=argparse.REMAINDER, help="the guest command")
    run.set_defaults(func=cmd_lab_run)
    info = lab_sub.add_parser("info", help="describe a lab kernel and what is provisioned")
    info.add_argument("--kernel", metavar="K")
    info.set_defaults(func=cmd_lab_info)
    prov = lab_sub.add_parser("provision", help="extract a Debian kernel, its headers and debug vmlinux "
                              "into the cache (never installed), and checkpatch; once")
    prov.add_argument("--kernel", metavar="K", help="'stock' (default), a series (6.1) or a Debian release; "
                      "7.3 is built from Debian's source (its packaged tools need a newer glibc)")
    prov.set_defaults(func=cmd_lab_provision)

    kernel = lab_sub.add_parser("kernel", help="build lab kernels from Debian's 6.12 or 7.3 source")
    kernel_sub = kernel.add_subparsers(dest="kernel_cmd", required=True, metavar="ACTION")
    kbuild = kernel_sub.add_parser("build", help="build the vanilla (default), --patched, --debug or --kcsan lab "
                                   "kernel, once (cached; boot it with --kernel vanilla|patched|debug|kcsan)")
    variant = kbuild.add_mutually_exclusive_group()
    variant.add_argument("--patched", dest="variant", action="store_const", const="patched",
                         help="apply linux_patch_exp/ and CONFIG_WQ_MEASURE")
    variant.add_argument("--debug", dest="variant", action="store_const", const="debug",
                         help="with KASAN, UBSAN, lockdep, debug objects, kmemleak and the watchdogs "
                         "(linux_patch_exp/debug.config): to test modules, not to measure")
    variant.add_argument("--kcsan", dest="variant", action="store_const", const="kcsan",
                         help="with KCSAN, the data-race detector (linux_patch_exp/kcsan.config)")
    kbuild.set_defaults(variant="vanilla")
    kbuild.add_argument("--series", choices=tuple(SOURCE_SUITES), default=DEFAULT_SERIES,
                        help=f"the Linux source to build (default {DEFAULT_SERIES}; boot 7.3 with --kernel 7.3)")
    kbuild.add_argument("--config-only", action="store_true", help="unpack, patch and configure only")
    kbuild.add_argument("--jobs", type=int, metavar="N", help="make -j (default: CPUs + 1)")
    kbuild.set_defaults(func=cmd_lab_kernel_build)

    up = lab_sub.add_parser("up", help="boot a lab and keep it running: later runs with the same options "
                            "attach to it instead of booting (until `wqkit lab down`)")
    add_lab_options(up)
    up.set_defaults(func=cmd_lab_up)
    down = lab_sub.add_parser("down", help="stop the kept lab")
    down.set_defaults(func=cmd_lab_down)

    smoke = lab_sub.add_parser("smoke", help="boot the lab, run a module and list workqueues with drgn")
    add_lab_options(smoke)
    smoke.add_argument("--nr", type=int, help="work items wq_smoke queues (default: the module's)")
    smoke.add_argument("--json", action="store_true", help="print the report as JSON")
    smoke.set_defaults(func=cmd_lab_smoke)
