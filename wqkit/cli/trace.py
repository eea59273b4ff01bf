"""``wqkit trace``: one command per declared tracer (wqkit.runs.kinds), its options from its declaration.

Every tracer gets its parameters and its load's as options, runs through the
registry and is read back with ``load_run``. What a command prints (and the
seed's JSON and plot options of ``trace workers``) is the only thing written
here per tracer; a tracer without a presenter prints its rows per event and engine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

from wqkit.cli.options import add_param_options, add_target_options, param_values, progress, target_options
from wqkit.runs.kinds import RunKind, tracers
from wqkit.runs.spec import Param

EXAMPLES = {
    "workers": """examples:
  wqkit trace workers                                   create_worker() durations under new_worker's flood
  wqkit trace workers --nr-work-max 100 --engine both --save-json w.json --save-plot
  wqkit trace workers --type-measurement die --workers 16
  wqkit trace workers --type-measurement die --trigger idle   the kernel's idle culling (5 minutes)
  wqkit trace workers --load-json w.json --save-plot    plot a saved summary again""",
    "latency": """examples:
  wqkit trace latency --duration 30                     every workqueue for 30 s
  wqkit trace latency events_unbound --by symbol        per work function
  wqkit trace latency --engine both --during insert_exec --nr 1000""",
}
#: Where a tracer's load options go in --help.
LOAD_TITLE = "its load: the {} module's parameters"


def _print_workers(data: dict) -> None:
    """One line per engine: workers measured, median and p99, lost events."""
    median, p99 = data["p50_ns"], data["p99_ns"]
    others = [e for e in data.get("engines_attached") or [] if e != data["engine"]]
    print(f"{data['measurement']}: {data['count']} workers ({data['engine']}, {data['kernel']} under "
          f"{str(data['accel']).upper()}); median {median / 1000 if median else float('nan'):.1f} µs, "
          f"p99 {p99 / 1000 if p99 else float('nan'):.1f} µs; lost events {data['lost_events']}"
          + (f"; {', '.join(others)} attached too: its probe handlers are inside these durations" if others else "")
          + (f"; {data['others']} other create_worker() calls (another pool, or before the flood) left out"
             if data.get("others") else ""))


def show_workers(path: Path | None, args: argparse.Namespace) -> None:
    """The seed's output: a line per engine, then the saved JSON and histogram plot if asked."""
    from wqkit.analysis import workers as analysis
    from wqkit.analysis.load import load_run

    if path is None:
        data = analysis.read_summary(args.load_json)
    else:
        trace = load_run(path)
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


def add_workers_extras(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save-json", metavar="SAVE_JSON", help="Save histogram data to a JSON file")
    parser.add_argument("--load-json", metavar="LOAD_JSON", help="Load histogram data from JSON file instead of tracing")
    parser.add_argument("--save-plot", action="store_true", help="Save the histogram plot as a PNG file")


def show_latency(path: Path | None, args: argparse.Namespace) -> None:
    """Per workqueue (or work function) latencies; around an experiment, its samples compared item by item."""
    from wqkit.analysis import latency as analysis
    from wqkit.analysis.load import load_run

    assert path is not None
    trace = load_run(path)
    meta, items, during = trace.meta, trace.items, trace.meta.get("during")
    print(readable_latency(analysis.df_latency(items, by=args.by)))
    if len(meta["engines"]) > 1:
        print("both engines attached at once: each one's times include the other's probe handlers on the same "
              "tracepoints; trace with one engine for latencies")
    why_not = analysis.not_compared(during) if during else None
    if why_not:
        print(why_not)
    elif during:
        run = load_run(path / meta["experiment_run"])
        for engine in meta["engines"]:
            pairs = analysis.compare_with_samples(items, run.samples, run.meta["tsc_khz"], engine)
            print(f"{engine}: {len(pairs)} items; median module {pairs['module_ns'].median() / 1000:.2f} µs, "
                  f"tracepoints {pairs['tracepoint_ns'].median() / 1000:.2f} µs; module < tracepoints for "
                  f"{int((pairs['module_ns'] < pairs['tracepoint_ns']).sum())} items")


def add_latency_extras(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=("workqueue", "symbol"), default="workqueue",
                        help="summarise per workqueue (default) or per work function")


def show_rows(path: Path | None, args: argparse.Namespace) -> None:
    """A declared tracer's rows, counted per event and engine."""
    from wqkit.analysis.load import load_run

    assert path is not None
    trace = load_run(path)
    print(trace.events.groupby(["engine", "event"]).size().rename("rows").reset_index().to_string(index=False))


#: Per tracer command: its extra (output) options and what it prints.
PRESENTERS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable]] = {
    "workers": (add_workers_extras, show_workers), "latency": (add_latency_extras, show_latency)}


def readable_latency(table) -> str:
    """df_latency with its ns columns in µs, for a terminal."""
    shown = table.copy()
    for column in [c for c in shown.columns if c.endswith("_ns")]:
        shown[column.replace("_ns", "_us")] = (shown.pop(column) / 1000).round(1)
    return shown.to_string(index=False)


def _own_options(kind: RunKind) -> tuple[Param, ...]:
    """A tracer's own parameters that are options (the experiment it runs ``during`` is the last one)."""
    return tuple(p for p in kind.params if p.type != "experiment")


def cmd_trace(args: argparse.Namespace) -> int:
    kind: RunKind = args.kind
    show = PRESENTERS.get(kind.command or "", (None, show_rows))[1]
    if getattr(args, "load_json", None):
        show(None, args)
        return 0
    values, graph = param_values(args, _own_options(kind) + kind.load_options({})), None
    if kind.load_param and getattr(args, "during", None):
        from wqkit.cli.experiments import task_graph
        from wqkit.runs.spec import experiment

        run_args = build_run_parser().parse_args(["run", *args.during])
        exp = experiment(run_args.experiment)
        values |= {kind.load_param: exp.name, **param_values(run_args, exp.options)}
        graph = task_graph(run_args) if exp.graph else None
    path = kind.run(values, graph=graph, out=Path(args.out), progress=progress, **target_options(args))
    print(f"run directory: {path}")
    show(path, args)
    return 0


def build_run_parser() -> argparse.ArgumentParser:
    """The ``wqkit run`` parser alone, for ``--during EXPERIMENT [its options]``."""
    from wqkit.cli.experiments import add_commands

    parser = argparse.ArgumentParser(prog="wqkit trace latency --during")
    add_commands(parser.add_subparsers(dest="cmd", required=True))
    return parser


def add_commands(sub) -> None:
    trace = sub.add_parser("trace", help="BPF tracers of the workqueue code (in the lab)")
    trace_sub = trace.add_subparsers(dest="trace_cmd", required=True, metavar="TRACER")
    for command, kind in tracers().items():
        parser = trace_sub.add_parser(command, help=kind.description, description=kind.description,
                                      epilog=EXAMPLES.get(command),
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        add_param_options(parser, _own_options(kind))
        if kind.load:
            add_param_options(parser, kind.load_options({}), LOAD_TITLE.format(kind.load))
        PRESENTERS.get(command, (lambda p: None, None))[0](parser)
        add_target_options(parser)
        if kind.load_param:
            parser.add_argument("--during", nargs=argparse.REMAINDER, metavar="EXPERIMENT",
                                help=kind.param(kind.load_param).help + ", with its wqkit run options "
                                "(last option; e.g. --during insert_exec --nr 1000)")
        parser.set_defaults(func=cmd_trace, kind=kind)
