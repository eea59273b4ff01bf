"""The ``wqkit`` command line: a thin layer over the library.

Every failure the user can act on is a WqkitError, printed as one line
(``wqkit: error: ...``) with a non-zero exit status; Ctrl-C and SIGTERM stop
the lab VM on the way out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Sequence

from wqkit import __version__, kmod
from wqkit.errors import WqkitError
from wqkit.experiments import EXPERIMENTS
from wqkit.kernel_source import checkpatch
from wqkit.lab import LabSession, provision_kernel, resolve_kernel, resolve_release
from wqkit.lab.accel import ACCELS
from wqkit.lab.vm import TCG_THREADS
from wqkit.target import TARGETS, LabTarget, make_target
from wqkit.trace.engine import MAP_KEYS
from wqkit.trace.workers import TRIGGERS


def add_lab_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that boots the lab."""
    group = parser.add_argument_group("lab VM")
    group.add_argument("--kernel", metavar="K", help="lab kernel: 'stock' (default), a provisioned release "
                       "or its series (6.1), or a built kernel tree")
    group.add_argument("--cpus", type=int, default=2, metavar="N", help="guest CPUs (default 2)")
    group.add_argument("--memory", default="2G", metavar="M", help="guest memory (default 2G)")
    group.add_argument("--accel", choices=ACCELS, default="auto",
                       help="auto (default) uses KVM only when it really works, else TCG")
    group.add_argument("--tcg-threads", choices=TCG_THREADS, default="multi",
                       help="TCG: one host thread per vCPU (multi, default) or vCPUs taking turns on one "
                       "(single: no boot-time int3 race, but serialised vCPUs)")


def lab_options(args: argparse.Namespace) -> dict:
    return dict(kernel=resolve_kernel(args.kernel), cpus=args.cpus, memory=args.memory, accel=args.accel,
                tcg_threads=args.tcg_threads)


def cmd_lab_run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise WqkitError("wqkit lab run: give a command after --, e.g. wqkit lab run -- uname -r")
    with LabSession(**lab_options(args), rwdirs=args.rwdir) as lab:
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
    kernel = provision_kernel(resolve_release(args.kernel), progress=_progress)
    print(f"lab kernel {kernel.label}: image {kernel.image}, Kbuild {kernel.build_dir}, "
          f"debug vmlinux {kernel.debug_vmlinux}")
    print(f"checkpatch: {checkpatch(progress=_progress)}")
    return 0


def cmd_lab_kernel_build(args: argparse.Namespace) -> int:
    from wqkit.lab.build import build_kernel

    if args.jobs is not None and args.jobs < 1:
        raise WqkitError("--jobs must be at least 1")
    build = build_kernel("patched" if args.patched else "vanilla", jobs=args.jobs, config_only=args.config_only,
                         progress=_progress)
    print(build.out / ".config" if args.config_only else f"{build.kernel().label}: {build.out}")
    return 0


def cmd_lab_smoke(args: argparse.Namespace) -> int:
    from wqkit.smoke import run_smoke

    with LabTarget(**lab_options(args)) as target:
        report = run_smoke(target, nr=args.nr, progress=_progress)
    print(report.to_json() if args.json else report.summary())
    return 0 if report.work_items_executed == report.work_items_queued else 1


def _experiment_values(args: argparse.Namespace) -> dict:
    """The values of a ``run EXPERIMENT`` command line, keyed by module parameter (None: not given)."""
    return {o.param: getattr(args, f"exp_{o.param}") for o in EXPERIMENTS[args.experiment].options}


def cmd_run(args: argparse.Namespace) -> int:
    from wqkit.run import run_experiment

    exp = EXPERIMENTS[args.experiment]
    values = _experiment_values(args)
    options = lab_options(args) if args.target == "lab" else {}
    graph = _task_graph(args) if exp.graph else None
    path = run_experiment(exp.name, values, target_name=args.target, out=Path(args.out),
                          timeout=args.timeout, progress=_progress, sample_state_hz=args.sample_state,
                          graph=graph, **options)
    meta = json.loads((path / "meta.json").read_text())
    samples = meta["samples"]
    print(f"{path}: {samples['collected']}/{samples['expected']} samples, {samples['dropped']} dropped, "
          f"{meta['kernel_release']} under {meta['accel'].upper()}")
    return 0


def _task_graph(args: argparse.Namespace):
    """The task graph of ``--graph FILE`` (text or .stg) or ``--shape SHAPE``, checked."""
    from wqkit import graph

    if not args.graph:
        return graph.parse_shape(args.shape)
    path = Path(args.graph)
    if not path.is_file():
        raise WqkitError(f"{path}: no such graph file")
    text = path.read_text()
    return (graph.read_stg(text) if path.suffix == ".stg" else graph.TaskGraph.from_text(text)).validate()


def _print_workers(data: dict) -> None:
    """One line per engine: workers measured, median and p99, lost events."""
    median, p99 = data["p50_ns"], data["p99_ns"]
    others = [e for e in data.get("engines_attached") or [] if e != data["engine"]]
    print(f"{data['measurement']}: {data['count']} workers ({data['engine']}, {data['kernel']} under "
          f"{str(data['accel']).upper()}); median {median / 1000 if median else float('nan'):.1f} µs, "
          f"p99 {p99 / 1000 if p99 else float('nan'):.1f} µs; lost events {data['lost_events']}"
          + (f"; {', '.join(others)} attached too: its probe handlers are inside these durations" if others else ""))


def cmd_trace_workers(args: argparse.Namespace) -> int:
    from wqkit.trace import workers

    if args.load_json:
        data = workers.read_summary(args.load_json)
    else:
        if args.delay < 0 or args.nr_work_max < 1:
            raise WqkitError("--delay must be >= 0 and --nr-work-max >= 1")
        options = lab_options(args) if args.target == "lab" else {}
        path = workers.trace_workers(args.type_measurement, engine=args.engine, trigger=args.trigger,
                                     delay=args.delay, nr_work_max=args.nr_work_max, hold_ms=args.hold_ms,
                                     workers=args.workers, timeout=args.timeout, target_name=args.target,
                                     out=Path(args.out), progress=_progress, **options)
        meta, events = workers.load_trace(path)
        print(f"run directory: {path}")
        for engine in meta["engines"][1:]:
            _print_workers(workers.summary(meta, events, engine))
        data = workers.summary(meta, events)
    _print_workers(data)
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(data, indent=1) + "\n")
        print(f"saved {args.save_json}")
    if args.save_plot:
        import matplotlib
        matplotlib.use("Agg")
        name = f"worker_{data['measurement']}_histogram.png"
        workers.plot_durations(data).savefig(name, dpi=100)
        print(f"saved {name}")
    return 0


def cmd_trace_latency(args: argparse.Namespace) -> int:
    import pandas as pd

    from wqkit.trace import latency

    during = values = graph = None
    if args.during:
        run_args = build_parser().parse_args(["run", *args.during])
        during, values = run_args.experiment, _experiment_values(run_args)
        graph = _task_graph(run_args) if EXPERIMENTS[during].graph else None
    options = lab_options(args) if args.target == "lab" else {}
    path = latency.trace_latency(args.workqueues, engine=args.engine, during=during, values=values, graph=graph,
                                 duration=args.duration, max_pending=args.max_pending, target_name=args.target,
                                 out=Path(args.out), progress=_progress, **options)
    meta, items = latency.load_latency(path)
    print(f"run directory: {path}")
    print(readable_latency(latency.df_latency(items, by=args.by)))
    if len(meta["engines"]) > 1:
        print("both engines attached at once: each one's times include the other's probe handlers on the same "
              "tracepoints; trace with one engine for latencies")
    why_not = latency.not_compared(during) if during else None
    if why_not:
        print(why_not)
    elif during:
        run = path / meta["experiment_run"]
        samples = pd.read_parquet(run / "samples.parquet")
        tsc_khz = json.loads((run / "meta.json").read_text())["tsc_khz"]
        for engine in meta["engines"]:
            pairs = latency.compare_with_samples(items, samples, tsc_khz, engine)
            print(f"{engine}: {len(pairs)} items; median module {pairs['module_ns'].median() / 1000:.2f} µs, "
                  f"tracepoints {pairs['tracepoint_ns'].median() / 1000:.2f} µs; module < tracepoints for "
                  f"{int((pairs['module_ns'] < pairs['tracepoint_ns']).sum())} items")
    return 0


def readable_latency(table) -> str:
    """df_latency with its ns columns in µs, for a terminal."""
    shown = table.copy()
    for column in [c for c in shown.columns if c.endswith("_ns")]:
        shown[column.replace("_ns", "_us")] = (shown.pop(column) / 1000).round(1)
    return shown.to_string(index=False)


def cmd_analyze(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")  # files only: never open windows
    from wqkit.analysis.report_files import analyze, format_table

    data_dir = Path(args.data_dir)
    out = Path(args.output_dir) if args.output_dir else Path("wqkit-analysis") / data_dir.resolve().name
    runs, summary, files = analyze(data_dir, out, include_failed=args.include_failed)
    for note in runs.notes:
        _progress(note)
    for origin in sorted({run.origin for run in runs}):
        print(f"# {origin}")
    print(format_table(runs))
    print(f"wrote {len(files)} files to {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from wqkit.report import make_report

    parameters = {name: _literal(value) for name, value in args.parameters}
    page = make_report(Path(args.notebook), parameters, Path(args.out), with_code=args.with_code)
    print(f"report: {page} (index: {page.parent / 'index.html'})")
    return 0


def _literal(text: str) -> object:
    """A -p value as papermill takes it: a Python literal when it is one, else the string."""
    import ast
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def cmd_monitor(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from wqkit.inspect.monitor import monitor
    from wqkit.inspect.snapshot import take_snapshot
    from wqkit.inspect.source import open_program

    if args.interval < 0 or args.max_iterations < 0:
        raise WqkitError("--interval and --max-iterations must not be negative")
    with ExitStack() as stack:
        out = stack.enter_context(open(args.output, "w")) if args.output else sys.stdout
        if args.qmp:
            from wqkit.inspect.lab import QmpInspector

            if not args.vmlinux:
                raise WqkitError("--qmp needs --vmlinux, the guest kernel's debug vmlinux")
            control = Path(args.qmp_control) if args.qmp_control else None
            take = QmpInspector(Path(args.qmp), Path(args.vmlinux), control, args.consistent).snapshot
        elif args.core or args.target == "local":
            vmlinux = Path(args.vmlinux) if args.vmlinux else None
            prog = open_program(core=Path(args.core) if args.core else None, vmlinux=vmlinux)
            take = lambda: take_snapshot(prog)  # noqa: E731
        else:
            from wqkit.inspect.lab import LabInspector, QmpInspector, vmcore_snapshot

            target = stack.enter_context(LabTarget(**lab_options(args)))
            if args.via == "vmcore":
                dump = target.session.workdir / "monitor.vmcore"
                take = lambda: vmcore_snapshot(target, dump)  # noqa: E731
            elif args.via == "guest":
                _progress("loading the lab kernel's debug info in the guest (~25 s under TCG)")
                take = LabInspector(target).snapshot
            else:
                take = QmpInspector.for_lab(target, consistent=args.consistent).snapshot
        monitor(take, out, names=args.workqueues, interval=args.interval, max_iterations=args.max_iterations,
                scenario=args.scenario, verbose=args.verbose, active_only=args.show_active_pool, fmt=args.format)
    return 0


def cmd_module(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        for spec in kmod.MODULES.values():
            params = ", ".join(f"{n}={p.minimum}..{p.maximum}" for n, p in spec.params.items())
            print(f"{spec.name:16} {spec.description} [{params}]")
        return 0
    params = dict(_parse_param(p) for p in args.params)
    kmod.module_spec(args.name).insmod_args(params)  # refuse bad input before booting anything
    with make_target(args.target, **(lab_options(args) if args.target == "lab" else {})) as target:
        with kmod.loaded(target, args.name, params, progress=_progress) as module:
            for line in module.dmesg():
                print(line)
    return 0


def _parse_param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise WqkitError(f"module parameter {text!r} is not NAME=VALUE")
    return name, value


def _progress(message: str) -> None:
    print(f"wqkit: {message}", file=sys.stderr, flush=True)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wqkit", description="A research workbench for Linux workqueues.")
    parser.add_argument("--version", action="version", version=f"wqkit {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    lab = sub.add_parser("lab", help="the lab VM: provision kernels, run commands")
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
    prov.add_argument("--kernel", metavar="K", help="'stock' (default), a series (6.1) or a Debian release")
    prov.set_defaults(func=cmd_lab_provision)

    kernel = lab_sub.add_parser("kernel", help="build lab kernels from Debian's 6.12 source")
    kernel_sub = kernel.add_subparsers(dest="kernel_cmd", required=True, metavar="ACTION")
    kbuild = kernel_sub.add_parser("build", help="build the vanilla (default) or --patched lab kernel, once "
                                   "(cached; boot it with --kernel vanilla|patched)")
    kbuild.add_argument("--patched", action="store_true", help="apply linux_patch_exp/ and CONFIG_WQ_MEASURE")
    kbuild.add_argument("--config-only", action="store_true", help="unpack, patch and configure only")
    kbuild.add_argument("--jobs", type=int, metavar="N", help="make -j (default: CPUs + 1)")
    kbuild.set_defaults(func=cmd_lab_kernel_build)

    smoke = lab_sub.add_parser("smoke", help="boot the lab, run a module and list workqueues with drgn")
    add_lab_options(smoke)
    smoke.add_argument("--nr", type=int, default=1000, help="work items wq_smoke queues (default 1000)")
    smoke.add_argument("--json", action="store_true", help="print the report as JSON")
    smoke.set_defaults(func=cmd_lab_smoke)

    run_parser = sub.add_parser("run", help="run an experiment and write a run directory")
    run_sub = run_parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for exp in EXPERIMENTS.values():
        p = run_sub.add_parser(exp.name, help=exp.description, description=exp.description)
        for option in exp.options:
            if option.kind == "bool":
                p.add_argument(option.flag, dest=f"exp_{option.param}", action="store_true", default=None,
                               help=option.help)
            else:
                p.add_argument(option.flag, dest=f"exp_{option.param}", type=int if option.kind == "int" else str,
                               metavar={"int": "N", "flags": "FLAGS"}.get(option.kind, "CPUS"), help=option.help)
        if exp.graph:
            source = p.add_mutually_exclusive_group()
            source.add_argument("--graph", metavar="FILE", help="a task graph: wqkit's text format, or a Standard "
                                "Task Graph set file (.stg)")
            source.add_argument("--shape", metavar="SHAPE", default="fork-join",
                                help="chain, fork-join, pipeline or layered, with sizes: fork-join:width=16,depth=2 "
                                "(default fork-join)")
        p.add_argument("--target", choices=TARGETS, default="lab")
        p.add_argument("--out", default="runs", metavar="DIR", help="where run directories go (default runs/)")
        p.add_argument("--timeout", type=float, default=3600.0, metavar="S",
                       help="stop the run, keep what it measured and mark it failed after S seconds")
        p.add_argument("--sample-state", type=float, metavar="HZ",
                       help="lab: sample pools and workqueues from the host (QMP) at HZ (up to 100) into "
                       "state.parquet")
        add_lab_options(p)
        p.set_defaults(func=cmd_run)

    analyze = sub.add_parser("analyze", help="summarise and plot run directories (the seed's analyze_wq_cycles.py)",
                             description="Analyze workqueue cycle measurements (start/end differences)")
    analyze.add_argument("data_dir", help="a run directory, or a directory of run directories")
    analyze.add_argument("--output-dir", help="output directory for plots and analysis "
                         "(default wqkit-analysis/NAME)")
    analyze.add_argument("--include-failed", action="store_true",
                         help="also summarise runs marked failed (labelled FAILED)")
    analyze.set_defaults(func=cmd_analyze)

    report = sub.add_parser("report", help="execute a notebook with papermill and export a self-contained HTML report")
    report.add_argument("notebook", help="e.g. notebooks/insert_exec.ipynb")
    report.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a notebook parameter (repeatable), as papermill -p")
    report.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default reports/)")
    report.add_argument("--with-code", action="store_true", help="keep the code cells in the HTML")
    report.set_defaults(func=cmd_report)

    trace = sub.add_parser("trace", help="BPF tracers of the workqueue code (in the lab)")
    trace_sub = trace.add_subparsers(dest="trace_cmd", required=True, metavar="TRACER")
    tw = trace_sub.add_parser("workers", help="worker creation and death (the seed's bpf_worker_measurement.py)",
                              description="Trace create_worker latency and manage kernel module.")
    tw.add_argument("--type-measurement", choices=("creation", "die"), default="creation",
                    help="Type of worker measurement: 'creation' (default) or 'die'")
    tw.add_argument("--delay", type=int, default=100, help="Delay value to pass to the kernel module (default: 100)")
    tw.add_argument("--nr-work-max", type=int, default=500,
                    help="nr_work_max value to pass to the kernel module (default: 500)")
    tw.add_argument("--hold-ms", type=int, default=1000, help="ms each flooding work item sleeps (default 1000)")
    tw.add_argument("--workers", type=int, default=8, help="die/destroy: workers to create, then destroy (default 8)")
    tw.add_argument("--save-json", metavar="SAVE_JSON", help="Save histogram data to a JSON file")
    tw.add_argument("--load-json", metavar="LOAD_JSON", help="Load histogram data from JSON file instead of tracing")
    tw.add_argument("--save-plot", action="store_true", help="Save the histogram plot as a PNG file")
    tw.add_argument("--engine", choices=("bpftrace", "bcc", "both"), default="bpftrace",
                    help="bpftrace (default), bcc, or both at once on the same load")
    tw.add_argument("--timeout", type=float, default=3600.0, help="seconds the load may take (default 3600)")
    tw.add_argument("--trigger", choices=TRIGGERS, default="destroy",
                    help="die: destroy (a pool grown, then destroyed; default) or idle (a pool grown, then "
                    "its surplus workers culled by the kernel after 5 minutes idle)")
    tw.add_argument("--target", choices=TARGETS, default="lab")
    tw.add_argument("--out", default="runs", metavar="DIR", help="where run directories go (default runs/)")
    add_lab_options(tw)
    tw.set_defaults(func=cmd_trace_workers)
    tl = trace_sub.add_parser("latency", help="queue -> execute latency from the workqueue tracepoints",
                              description="Time every work item queued on WORKQUEUEs (all when none is named) "
                              "from workqueue_queue_work to execute_start/end, for --duration seconds or around "
                              "one experiment (--during EXPERIMENT [its options], e.g. --during insert_exec "
                              "--nr 1000): then the experiment's own workqueue is traced and its samples are "
                              "compared item by item.")
    tl.add_argument("workqueues", nargs="*", metavar="WORKQUEUE", help="workqueue names (at most 8)")
    tl.add_argument("--engine", choices=("bpftrace", "bcc", "both"), default="bpftrace",
                    help="bpftrace (default), bcc, or both at once")
    tl.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds to trace without --during "
                    "(default 10)")
    tl.add_argument("--max-pending", type=int, default=MAP_KEYS, metavar="N",
                    help=f"work items the tracer holds between queue and end (default {MAP_KEYS}); more are "
                    "lost, counted, and fail the run")
    tl.add_argument("--by", choices=("workqueue", "symbol"), default="workqueue",
                    help="summarise per workqueue (default) or per work function")
    tl.add_argument("--target", choices=TARGETS, default="lab")
    tl.add_argument("--out", default="runs", metavar="DIR", help="where run directories go (default runs/)")
    add_lab_options(tl)
    tl.add_argument("--during", nargs=argparse.REMAINDER, metavar="EXPERIMENT",
                    help="run this experiment, with its wqkit run options, while tracing (last option)")
    tl.set_defaults(func=cmd_trace_latency)

    from wqkit.inspect.monitor import FORMATS

    mon = sub.add_parser("monitor", help="print workqueue information (the seed's drgn wq_monitor.py)",
                         description="Print workqueue information.")
    add_monitor_options(mon)
    mon.add_argument("--format", choices=FORMATS, default="text", help="text (the seed's layout), json or csv")
    mon.add_argument("--target", choices=TARGETS, default="lab")
    mon.add_argument("--core", metavar="FILE", help="read a vmcore instead of a running kernel")
    mon.add_argument("--vmlinux", metavar="FILE", help="the kernel's debug vmlinux (for --core or local)")
    mon.add_argument("--via", choices=("qmp", "guest", "vmcore"), default="qmp",
                     help="lab only: drgn on the host reading the guest over QMP (qmp, default: nothing runs "
                     "in the guest), drgn inside the guest (guest), or a memory dump read on the host (vmcore)")
    mon.add_argument("--consistent", action="store_true",
                     help="qmp: stop the guest's vCPUs around each read (the pause is reported)")
    mon.add_argument("--qmp", metavar="SOCKET", help="read any QEMU guest started with -qmp unix:SOCKET,server=on "
                     "and -device vmcoreinfo (with --vmlinux)")
    mon.add_argument("--qmp-control", metavar="SOCKET",
                     help="with --qmp --consistent: a second QMP socket of the same QEMU, for stop/cont")
    add_lab_options(mon)
    mon.set_defaults(func=cmd_monitor)

    mod = sub.add_parser("module", help="load one of wqkit's modules, show its kernel log, unload it")
    mod.add_argument("name", nargs="?", help="module name (see --list)")
    mod.add_argument("params", nargs="*", metavar="PARAM=VALUE")
    mod.add_argument("--list", action="store_true", help="list the modules and their parameters")
    mod.add_argument("--target", choices=TARGETS, default="lab")
    add_lab_options(mod)
    mod.set_defaults(func=cmd_module)
    return parser


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
