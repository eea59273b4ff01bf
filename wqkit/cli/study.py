"""``wqkit study``: run a study file on Dask distributed, and analyse its effects."""

from __future__ import annotations

import argparse
from pathlib import Path

from wqkit.cli.options import progress

EXAMPLES = """examples:
  wqkit study run studies/flags_latency.toml              a LocalCluster sized to this machine
  wqkit study run studies/flags_latency.toml --resume     only the runs without an ok run
  wqkit study run STUDY.toml --scheduler tcp://head:8786  the same study on an existing Dask cluster
  wqkit study analyze studies-out/flags_latency           effects with confidence intervals, and plots"""


def cmd_study_run(args: argparse.Namespace) -> int:
    from wqkit.study.engine import ClusterChoice, run_study
    from wqkit.study.spec import read_study

    study = read_study(Path(args.study))
    out = Path(args.out) if args.out else Path("studies-out") / study.name
    choice = ClusterChoice(slots=args.slots, scheduler=args.scheduler,
                           allow_oversubscribe=args.allow_oversubscribe, exclusive=args.exclusive)
    progress(f"{study.name}: {len(study.points)} points × {study.repetitions} repetitions = {study.runs} runs "
             f"into {out}")
    index = run_study(study, out, choice, resume=args.resume, progress=progress)
    counts = index["status"].value_counts().to_dict()
    print(f"{out}: {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, {counts.get('pending', 0)} pending "
          f"(index {out / 'study.parquet'})")
    return 0 if counts.get("ok", 0) == len(index) else 1


def cmd_study_analyze(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from wqkit.analysis.study import df_study, plot_effects, readable_effects, study_effects

    directory = Path(args.directory)
    table = df_study(directory)
    out = directory / "analysis"
    out.mkdir(exist_ok=True)
    table.to_csv(out / "runs.csv", index=False)
    print(f"# {directory.name}: {len(table)} ok runs ({table.attrs['failed']} failed, "
          f"{table.attrs['pending']} pending)" + ("; TCG: emulation timings" if (table["accel"] == "tcg").any()
                                                   else ""))
    several = table["experiment"].nunique() > 1
    baseline = None if args.baseline is None else _level(args.baseline)
    for experiment, factor, effects, _ in study_effects(table, args.factor, baseline, pooled=args.pooled):
        name = f"{experiment}-{factor}" if several else factor
        effects.to_csv(out / f"effects-{name}.csv", index=False)
        plot_effects(effects, tcg=(table["accel"] == "tcg").any()).savefig(out / f"effects-{name}.png", dpi=110)
        print(f"\n## {experiment if several else ''}{': ' if several else ''}{factor} "
              f"(baseline {effects.attrs['baseline']})")
        print(readable_effects(effects).to_string(index=False))
    print(f"\nwrote {out}")
    return 0


def _level(text: str) -> object:
    """A level as the study file spells it: a TOML/JSON number or boolean, else the text."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def add_commands(sub: argparse._SubParsersAction) -> None:
    study = sub.add_parser("study", help="grids of kernels × parameters × repetitions, on Dask distributed",
                           epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = study.add_subparsers(dest="study_cmd", required=True, metavar="SUBCOMMAND")
    run = commands.add_parser("run", help="run a study file's grid in a randomised, blocked order",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("study", metavar="STUDY.toml")
    run.add_argument("--out", metavar="DIR", help="the study directory (default studies-out/NAME)")
    run.add_argument("--resume", action="store_true", help="run only the runs of DIR without an ok run")
    run.add_argument("--slots", type=int, metavar="N",
                     help="VMs at once on this machine (default max(1, cores // lab CPUs))")
    run.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (tcp://host:8786) "
                     "whose workers were started with --resources VM=1")
    run.add_argument("--allow-oversubscribe", action="store_true",
                     help="allow more VM CPUs than host cores (timings skewed; under TCG meaningless)")
    run.add_argument("--exclusive", action="store_true", help="one VM per host at a time")
    run.set_defaults(func=cmd_study_run)
    analyze = commands.add_parser("analyze", help="effects of each factor with bootstrap intervals over runs")
    analyze.add_argument("directory", metavar="DIR")
    analyze.add_argument("--factor", action="append", help="a factor to analyse (default: every varied one)")
    analyze.add_argument("--baseline", help="the level ratios are taken to (default: each factor's first)")
    analyze.add_argument("--pooled", action="store_true",
                         help="pool the runs of the other factors' levels (default: compare within each "
                              "combination of them)")
    analyze.set_defaults(func=cmd_study_analyze)
