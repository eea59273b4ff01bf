"""``wqkit trace``: the BPF tracers (worker creation and death, queue → execution latency)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wqkit.cli.options import add_param_options, add_target_options, param_values, progress, target_options
from wqkit.runs.lifecycle import RUN_TIMEOUT_S
from wqkit.runs.spec import experiment, module_spec

WORKERS_EXAMPLES = """examples:
  wqkit trace workers                                   create_worker() durations under new_worker's flood
  wqkit trace workers --nr-work-max 100 --engine both --save-json w.json --save-plot
  wqkit trace workers --type-measurement die --workers 16
  wqkit trace workers --type-measurement die --trigger idle   the kernel's idle culling (5 minutes)
  wqkit trace workers --load-json w.json --save-plot    plot a saved summary again"""
LATENCY_EXAMPLES = """examples:
  wqkit trace latency --duration 30                     every workqueue for 30 s
  wqkit trace latency events_unbound --by symbol        per work function
  wqkit trace latency --engine both --during insert_exec --nr 1000"""


def _print_workers(data: dict) -> None:
    """One line per engine: workers measured, median and p99, lost events."""
    median, p99 = data["p50_ns"], data["p99_ns"]
    others = [e for e in data.get("engines_attached") or [] if e != data["engine"]]
    print(f"{data['measurement']}: {data['count']} workers ({data['engine']}, {data['kernel']} under "
          f"{str(data['accel']).upper()}); median {median / 1000 if median else float('nan'):.1f} µs, "
          f"p99 {p99 / 1000 if p99 else float('nan'):.1f} µs; lost events {data['lost_events']}"
          + (f"; {', '.join(others)} attached too: its probe handlers are inside these durations" if others else ""))


def cmd_trace_workers(args: argparse.Namespace) -> int:
    from wqkit.analysis import workers as analysis
    from wqkit.analysis.load import load_run
    from wqkit.trace import workers

    if args.load_json:
        data = analysis.read_summary(args.load_json)
    else:
        path = workers.trace_workers(args.type_measurement, engine=args.engine, trigger=args.trigger,
                                     load=param_values(args, workers.flood_params()), workers=args.workers,
                                     timeout=args.timeout, out=Path(args.out), progress=progress,
                                     **target_options(args))
        trace = load_run(path)
        print(f"run directory: {path}")
        for engine in trace.meta["engines"][1:]:
            _print_workers(analysis.summary(trace.meta, trace.events, engine))
        data = analysis.summary(trace.meta, trace.events)
    _print_workers(data)
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(data, indent=1) + "\n")
        print(f"saved {args.save_json}")
    if args.save_plot:
        import matplotlib
        matplotlib.use("Agg")
        name = f"worker_{data['measurement']}_histogram.png"
        analysis.plot_summary(data).savefig(name, dpi=100)
        print(f"saved {name}")
    return 0


def cmd_trace_latency(args: argparse.Namespace) -> int:
    import pandas as pd

    from wqkit.analysis import latency as analysis
    from wqkit.analysis.load import load_run
    from wqkit.cli.experiments import task_graph
    from wqkit.trace import latency

    during = values = graph = None
    if args.during:
        run_args = build_run_parser().parse_args(["run", *args.during])
        exp = experiment(run_args.experiment)
        during, values = exp.name, param_values(run_args, exp.options)
        graph = task_graph(run_args) if exp.graph else None
    path = latency.trace_latency(args.workqueues, engine=args.engine, during=during, values=values, graph=graph,
                                 duration=args.duration, max_pending=args.max_pending, out=Path(args.out),
                                 progress=progress, **target_options(args))
    trace = load_run(path)
    meta, items = trace.meta, trace.items
    print(f"run directory: {path}")
    print(readable_latency(analysis.df_latency(items, by=args.by)))
    if len(meta["engines"]) > 1:
        print("both engines attached at once: each one's times include the other's probe handlers on the same "
              "tracepoints; trace with one engine for latencies")
    why_not = analysis.not_compared(during) if during else None
    if why_not:
        print(why_not)
    elif during:
        run = path / meta["experiment_run"]
        samples = pd.read_parquet(run / "samples.parquet")
        tsc_khz = json.loads((run / "meta.json").read_text())["tsc_khz"]
        for engine in meta["engines"]:
            pairs = analysis.compare_with_samples(items, samples, tsc_khz, engine)
            print(f"{engine}: {len(pairs)} items; median module {pairs['module_ns'].median() / 1000:.2f} µs, "
                  f"tracepoints {pairs['tracepoint_ns'].median() / 1000:.2f} µs; module < tracepoints for "
                  f"{int((pairs['module_ns'] < pairs['tracepoint_ns']).sum())} items")
    return 0


def build_run_parser() -> argparse.ArgumentParser:
    """The ``wqkit run`` parser alone, for ``--during EXPERIMENT [its options]``."""
    from wqkit.cli.experiments import add_commands

    parser = argparse.ArgumentParser(prog="wqkit trace latency --during")
    add_commands(parser.add_subparsers(dest="cmd", required=True))
    return parser


def readable_latency(table) -> str:
    """df_latency with its ns columns in µs, for a terminal."""
    shown = table.copy()
    for column in [c for c in shown.columns if c.endswith("_ns")]:
        shown[column.replace("_ns", "_us")] = (shown.pop(column) / 1000).round(1)
    return shown.to_string(index=False)


def add_commands(sub) -> None:
    from wqkit.trace.engine import DEFAULT_ENGINE, ENGINE_CHOICES, ENGINES, MAP_KEYS
    from wqkit.trace.workers import DEATH_WORKERS, KINDS, TRIGGERS, flood_params

    engine_help = f"{' or '.join(ENGINES)} (default {DEFAULT_ENGINE}), or both at once on the same load"

    trace = sub.add_parser("trace", help="BPF tracers of the workqueue code (in the lab)")
    trace_sub = trace.add_subparsers(dest="trace_cmd", required=True, metavar="TRACER")
    tw = trace_sub.add_parser("workers", help="worker creation and death (the seed's bpf_worker_measurement.py)",
                              description="Trace create_worker latency and manage kernel module.",
                              epilog=WORKERS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    tw.add_argument("--type-measurement", choices=KINDS, default=KINDS[0],
                    help="Type of worker measurement: 'creation' (default) or 'die'")
    add_param_options(tw, flood_params(), "creation: the new_worker module's flood")
    runs = module_spec("wq_worker_death").param("run")
    tw.add_argument("--workers", type=int, default=DEATH_WORKERS,
                    help=f"die: workers to create, then destroy ({runs.min}..{runs.max}, default {DEATH_WORKERS})")
    tw.add_argument("--save-json", metavar="SAVE_JSON", help="Save histogram data to a JSON file")
    tw.add_argument("--load-json", metavar="LOAD_JSON", help="Load histogram data from JSON file instead of tracing")
    tw.add_argument("--save-plot", action="store_true", help="Save the histogram plot as a PNG file")
    tw.add_argument("--engine", choices=ENGINE_CHOICES, default=DEFAULT_ENGINE, help=engine_help)
    tw.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S,
                    help=f"seconds the load may take (default {RUN_TIMEOUT_S:g})")
    tw.add_argument("--trigger", choices=TRIGGERS, default=TRIGGERS[0],
                    help="die: destroy (a pool grown, then destroyed; default) or idle (a pool grown, then "
                    "its surplus workers culled by the kernel after 5 minutes idle)")
    add_target_options(tw)
    tw.set_defaults(func=cmd_trace_workers)

    tl = trace_sub.add_parser("latency", help="queue -> execute latency from the workqueue tracepoints",
                              description="Time every work item queued on WORKQUEUEs (all when none is named) "
                              "from workqueue_queue_work to execute_start/end, for --duration seconds or around "
                              "one experiment (--during EXPERIMENT [its options], e.g. --during insert_exec "
                              "--nr 1000): then the experiment's own workqueue is traced and its samples are "
                              "compared item by item.", epilog=LATENCY_EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    tl.add_argument("workqueues", nargs="*", metavar="WORKQUEUE", help="workqueue names (at most 8)")
    tl.add_argument("--engine", choices=ENGINE_CHOICES, default=DEFAULT_ENGINE, help=engine_help)
    tl.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds to trace without --during "
                    "(default 10)")
    tl.add_argument("--max-pending", type=int, default=MAP_KEYS, metavar="N",
                    help=f"work items the tracer holds between queue and end (default {MAP_KEYS}); more are "
                    "lost, counted, and fail the run")
    tl.add_argument("--by", choices=("workqueue", "symbol"), default="workqueue",
                    help="summarise per workqueue (default) or per work function")
    add_target_options(tl)
    tl.add_argument("--during", nargs=argparse.REMAINDER, metavar="EXPERIMENT",
                    help="run this experiment, with its wqkit run options, while tracing (last option)")
    tl.set_defaults(func=cmd_trace_latency)
