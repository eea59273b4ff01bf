"""``wqkit run``, ``analyze``, ``report``, ``module`` and ``new-experiment``: experiments and their runs."""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

from wqkit.cli.options import (add_param_options, add_target_options, experiment_values, lab_options,
                               param_values, progress, target_options)
from wqkit.errors import WqkitError
from wqkit.workbench import NOTEBOOKS
from wqkit.runs.lifecycle import RUN_TIMEOUT_S
from wqkit.runs.kinds import RunKind, upstream_kinds
from wqkit.runs.spec import Experiment, experiments, module_spec, modules

RUN_EXAMPLES = """examples:
  wqkit run insert_exec --nr 100000                  queue → execution latency of 100,000 work items
  wqkit run insert_exec --flags unbound,highpri --cpu any
  wqkit run exec_time_pred --loops 20000 --sample-state 50
  wqkit run kserver --shape fork-join:width=16,depth=2 --flags unbound
  wqkit run insert_exec --flags unbound --affinity-scope smt --affinity-strict --topology smt
  wqkit run test_workqueue --wq-items 5000           the kernel's own benchmark, per affinity scope
  WQKIT_EXPERIMENTS=~/my-exps wqkit run my_exp      an experiment of your own (wqkit new-experiment)"""


def cmd_run(args: argparse.Namespace) -> int:
    from wqkit.experiments.runner import run_experiment

    exp = experiments()[args.experiment]
    graph = task_graph(args) if exp.graph else None
    path = run_experiment(exp.name, experiment_values(args, exp), out=Path(args.out), timeout=args.timeout,
                          progress=progress, sample_state_hz=args.sample_state, graph=graph,
                          **target_options(args))
    from wqkit.analysis.load import load_run

    meta = load_run(path).meta
    samples = meta["samples"]
    print(f"{path}: {samples['collected']}/{samples['expected']} samples, {samples['dropped']} dropped, "
          f"{meta['kernel_release']} under {meta['accel'].upper()}")
    return 0


def cmd_run_upstream(args: argparse.Namespace) -> int:
    from wqkit.analysis.load import load_run

    kind = upstream_kinds()[args.experiment]
    path = kind.run(param_values(args, kind.params), out=Path(args.out), timeout=args.timeout, progress=progress,
                    **target_options(args))
    run = load_run(path)
    print(f"{path}: {run.meta['kernel_release']} under {run.meta['accel'].upper()}"
          f"{' (emulation timings)' if run.meta['accel'] == 'tcg' else ''}")
    print(run.events.to_string(index=False))
    return 0


def add_upstream_parser(sub, kind: RunKind) -> argparse.ArgumentParser:
    """``wqkit run NAME`` of a module of the kernel's own sources: its declared options."""
    p = sub.add_parser(kind.name, help=kind.description, description=f"{kind.description}: "
                       f"{kind.upstream['source']} of Linux {kind.upstream['series']}, built unchanged for the "
                       f"target's kernel. Declared in {kind.spec_file}.")
    add_param_options(p, kind.params, kind.name)
    p.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S, metavar="S",
                   help="give up on the module's init (the whole benchmark) after S seconds")
    add_target_options(p)
    p.set_defaults(func=cmd_run_upstream)
    return p


def task_graph(args: argparse.Namespace):
    """The task graph of ``--graph FILE`` (text or .stg) or ``--shape SHAPE``, checked."""
    from wqkit.experiments import graph

    if not args.graph:
        return graph.parse_shape(args.shape)
    path = Path(args.graph)
    if not path.is_file():
        raise WqkitError(f"{path}: no such graph file")
    text = path.read_text()
    return (graph.read_stg(text) if path.suffix == ".stg" else graph.TaskGraph.from_text(text)).validate()


def add_run_parser(sub, exp: Experiment) -> argparse.ArgumentParser:
    """``wqkit run EXPERIMENT``: its options, made from its declaration."""
    from wqkit.inspect.timeline import MAX_HZ

    p = sub.add_parser(exp.name, help=exp.description, description=f"{exp.description}. Its samples measure "
                       f"{exp.measures}. Declared in {exp.module_spec.spec_file}.")
    add_param_options(p, exp.options, f"{exp.name} (module {exp.module})")
    if exp.graph:
        source = p.add_mutually_exclusive_group()
        source.add_argument("--graph", metavar="FILE", help="a task graph: wqkit's text format, or a Standard "
                            "Task Graph set file (.stg)")
        source.add_argument("--shape", metavar="SHAPE", default="fork-join",
                            help="chain, fork-join, pipeline or layered, with sizes: fork-join:width=16,depth=2 "
                            "(default fork-join)")
    p.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S, metavar="S",
                   help="stop the run, keep what it measured and mark it failed after S seconds")
    p.add_argument("--sample-state", type=float, metavar="HZ",
                   help=f"lab: sample pools and workqueues from the host (guest RAM) at HZ (up to {MAX_HZ:g}) into "
                   "state.parquet")
    add_target_options(p)
    p.set_defaults(func=cmd_run)
    return p


def cmd_analyze(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")  # files only: never open windows
    from wqkit.analysis.report_files import analyze, format_table

    data_dir = Path(args.data_dir)
    out = Path(args.output_dir) if args.output_dir else Path("wqkit-analysis") / data_dir.resolve().name
    runs, summary, files = analyze(data_dir, out, include_failed=args.include_failed)
    for note in runs.notes:
        progress(note)
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


def cmd_notebook(args: argparse.Namespace) -> int:
    from wqkit.workbench import jupyterlab_command

    cmd = jupyterlab_command(Path(args.root).resolve(), args.port)
    print(f"wqkit: JupyterLab on {args.root} (Ctrl-C stops it; its URL, with the token, follows)", flush=True)
    os.execv(cmd[0], cmd)       # JupyterLab replaces this process: its Ctrl-C, its exit status


def _literal(text: str) -> object:
    """A -p value as papermill takes it: a Python literal when it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def cmd_module(args: argparse.Namespace) -> int:
    from wqkit.experiments import kmod
    from wqkit.target import make_target

    if args.list or not args.name:
        for spec in modules().values():
            params = ", ".join(f"{p.name}={p.range_text}" for p in spec.params if p.settable)
            print(f"{spec.name:16} {spec.description} [{params}]")
        return 0
    params = dict(_parse_param(p) for p in args.params)
    module_spec(args.name).insmod_args(params)  # refuse bad input before booting anything
    with make_target(args.target, **(lab_options(args) if args.target == "lab" else {})) as target:
        with kmod.loaded(target, args.name, params, progress=progress) as module:
            for line in module.dmesg():
                print(line)
    return 0


def _parse_param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise WqkitError(f"module parameter {text!r} is not NAME=VALUE")
    return name, value


def cmd_new_experiment(args: argparse.Namespace) -> int:
    from wqkit.experiments.scaffold import new_experiment

    directory = new_experiment(args.name, Path(args.directory))
    print(f"{directory}: a working experiment {args.name} (module wq_{args.name}); run it with\n"
          f"  WQKIT_EXPERIMENTS={directory.parent} wqkit run {args.name}")
    return 0


def add_commands(sub) -> None:
    run_parser = sub.add_parser("run", help="run an experiment and write a run directory", epilog=RUN_EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    run_sub = run_parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for exp in experiments().values():
        add_run_parser(run_sub, exp)
    for kind in upstream_kinds().values():
        add_upstream_parser(run_sub, kind)

    analyze = sub.add_parser("analyze", help="summarise and plot run directories (the seed's analyze_wq_cycles.py)",
                             description="Analyze workqueue cycle measurements (start/end differences)",
                             epilog="examples:\n  wqkit analyze runs/\n  wqkit analyze data/runs --output-dir out/",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    analyze.add_argument("data_dir", help="a run directory, or a directory of run directories")
    analyze.add_argument("--output-dir", help="output directory for plots and analysis "
                         "(default wqkit-analysis/NAME)")
    analyze.add_argument("--include-failed", action="store_true",
                         help="also summarise runs marked failed (labelled FAILED)")
    analyze.set_defaults(func=cmd_analyze)

    report = sub.add_parser("report", help="execute a notebook with papermill and export a self-contained HTML report",
                            epilog="examples:\n  wqkit report notebooks/insert_exec.ipynb -p nr 5000\n"
                            "  wqkit report notebooks/new_worker.ipynb -p data_dir data/runs",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("notebook", help="e.g. notebooks/insert_exec.ipynb")
    report.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a notebook parameter (repeatable), as papermill -p")
    report.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default reports/)")
    report.add_argument("--with-code", action="store_true", help="keep the code cells in the HTML")
    report.set_defaults(func=cmd_report)

    notebook = sub.add_parser("notebook", help="open the notebooks in JupyterLab (the interactive workbench)",
                              epilog="examples:\n  wqkit notebook            then open the URL it prints\n"
                              "  wqkit notebook --port 8890", formatter_class=argparse.RawDescriptionHelpFormatter)
    notebook.add_argument("--root", default=str(NOTEBOOKS), metavar="DIR",
                          help="the directory JupyterLab serves (default: the project's notebooks/)")
    notebook.add_argument("--port", type=int, metavar="N", help="port on localhost (default: a free one)")
    notebook.set_defaults(func=cmd_notebook)

    mod = sub.add_parser("module", help="load one of wqkit's modules, show its kernel log, unload it",
                         epilog="examples:\n  wqkit module --list\n  wqkit module wq_smoke nr=100",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    mod.add_argument("name", nargs="?", help="module name (see --list)")
    mod.add_argument("params", nargs="*", metavar="PARAM=VALUE")
    mod.add_argument("--list", action="store_true", help="list the modules and their parameters")
    add_target_options(mod, out=False)
    mod.set_defaults(func=cmd_module)

    new = sub.add_parser("new-experiment", help="write a working skeleton of an experiment of your own",
                         description="Write DIR/NAME/: a module using wqkit's recorder (NAME.c), its declaration "
                         "(NAME.toml) and a notebook. It runs as written: WQKIT_EXPERIMENTS=DIR wqkit run NAME.",
                         epilog="example:\n  wqkit new-experiment my_delay ~/wq-exps\n"
                         "  WQKIT_EXPERIMENTS=~/wq-exps wqkit run my_delay --nr 500",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    new.add_argument("name", help="the experiment's name (a C identifier)")
    new.add_argument("directory", help="where its directory is made")
    new.set_defaults(func=cmd_new_experiment)
