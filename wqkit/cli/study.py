"""``wqkit study``: run a study file on Dask distributed, and analyse its effects."""

from __future__ import annotations

import argparse
from pathlib import Path

from wqkit.cli.options import progress

EXAMPLES = """examples:
  wqkit study run studies/flags_latency.toml              a LocalCluster sized to this machine
  wqkit study run studies/flags_latency.toml --resume     only the runs without an ok run
  wqkit study run STUDY.toml --scheduler tcp://head:8786  the same study on an existing Dask cluster
  wqkit study worker tcp://head:8786                      this host's workers for it (one per VM slot)
  wqkit study analyze studies-out/flags_latency           effects with confidence intervals, and plots
  wqkit study plan studies/flags_latency.toml --pilot data/studies/flags_latency --half-width 0.1"""


def cmd_study_run(args: argparse.Namespace) -> int:
    from wqkit.study.engine import ClusterChoice, run_study
    from wqkit.study.spec import read_study

    study = read_study(Path(args.study))
    out = Path(args.out) if args.out else Path("studies-out") / study.name
    choice = ClusterChoice(slots=args.slots, scheduler=args.scheduler,
                           allow_oversubscribe=args.allow_oversubscribe, exclusive=args.exclusive)
    progress(f"{study.name}: {len(study.points)} points in {len(study.labs)} labs × {study.boots} boots × "
             f"{study.runs_per_boot} runs per boot = {study.runs} runs in {len(study.labs) * study.boots} boots "
             f"into {out}")
    index = run_study(study, out, choice, resume=args.resume, progress=progress)
    counts = index["status"].value_counts().to_dict()
    print(f"{out}: {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, {counts.get('pending', 0)} pending "
          f"(index {out / 'study.parquet'})")
    return 0 if counts.get("ok", 0) == len(index) else 1


def cmd_study_worker(args: argparse.Namespace) -> int:
    """Become this host's Dask workers for studies (``dask worker`` with wqkit's options)."""
    import os

    from wqkit.console import NO_BARS_ENV
    from wqkit.lab.vm import DEFAULT_CPUS
    from wqkit.study.worker import worker_command

    slots = args.slots or max(1, (os.cpu_count() or 1) // (args.lab_cpus or DEFAULT_CPUS))
    command = worker_command(args.scheduler, slots, args.listen)
    progress(f"{slots} study worker(s) for {args.scheduler} (VM=1 each), listening on "
             f"{command[command.index('--host') + 1]}; runs wait in {Path(command[-1]).parent} until the client "
             "has them")
    os.execve(command[0], command, {**os.environ, NO_BARS_ENV: "1"})
    return 1


def cmd_study_analyze(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from wqkit.analysis.study import (FAMILY_ALPHA, df_regimes, df_study, plot_effects, readable_effects,
                                      study_effects)

    directory = Path(args.directory)
    table = df_study(directory)
    out = directory / "analysis"
    out.mkdir(exist_ok=True)
    table.to_csv(out / "runs.csv", index=False)
    tcg = bool((table["accel"] == "tcg").any())
    print(f"# {directory.name}: {len(table)} ok runs in {table['boot'].nunique()} boots ({table.attrs['failed']} "
          f"failed, {table.attrs['pending']} pending)" + ("; TCG: emulation timings" if tcg else ""))
    several = table["experiment"].nunique() > 1
    baseline = None if args.baseline is None else _level(args.baseline)
    found = list(study_effects(table, args.factor, baseline, pooled=args.pooled))
    if found:
        family = found[0][2].attrs["family"]
        survivors = sum(int(effects["survives"].sum()) for _, _, effects, _ in found)
        print(f"{family} comparisons, p-values adjusted together (Holm, family-wise error {FAMILY_ALPHA:.0%}): "
              f"{survivors} survive. Intervals: {found[0][2].attrs['confidence']:.0%} t over boots "
              "(each boot: the mean log of its runs' statistic).")
    for experiment, factor, effects, runs in found:
        name = f"{experiment}-{factor}" if several else factor
        effects.to_csv(out / f"effects-{name}.csv", index=False)
        plot_effects(effects, runs, tcg=tcg).savefig(out / f"effects-{name}.png", dpi=110)
        print(f"\n## {experiment if several else ''}{': ' if several else ''}{factor} "
              f"(baseline {effects.attrs['baseline']})")
        print(readable_effects(effects).to_string(index=False))
    _placement_and_benchmarks(directory, table, out)
    regimes = df_regimes(table)
    if len(regimes):
        regimes.to_csv(out / "regimes.csv", index=False)
        print("\n## Points whose boots fall into two regimes (p50), with what their runs ran on")
        print(regimes.to_string(index=False))
    print(f"\nwrote {out}")
    return 0


def _placement_and_benchmarks(directory: Path, table, out: Path) -> None:
    """Where a queue → execution experiment's items ran (per level, over boots), and the kernel's own
    benchmarks' figures per scope: printed, and written as CSV and PNG."""
    from wqkit.analysis.placement import plot_study_placement, readable_placement
    from wqkit.analysis.study import study_benchmarks, study_placements
    from wqkit.analysis.upstream import plot_scope_benchmark, readable_benchmark

    for name, placement in study_placements(directory, table).items():
        placement.to_csv(out / f"placement-{name}.csv", index=False)
        plot_study_placement(placement.sort_values(list(placement.columns[:3]))).savefig(
            out / f"placement-{name}.png", dpi=110)
        print(f"\n## {name}: where items ran, % of items (mean over boots; valid under TCG)")
        print(readable_placement(placement).to_string(index=False))
    for name, bench in study_benchmarks(directory, table).items():
        bench.to_csv(out / f"benchmark-{name}.csv", index=False)
        plot_scope_benchmark(bench).savefig(out / f"benchmark-{name}.png", dpi=110)
        print(f"\n## {name}: per scope, geometric mean over boots (95 % t interval in the CSV)")
        print(readable_benchmark(bench).to_string(index=False))


def cmd_study_plan(args: argparse.Namespace) -> int:
    from wqkit.analysis.plan import MAX_BOOTS, df_plan, study_plan
    from wqkit.analysis.study import df_study
    from wqkit.errors import WqkitError
    from wqkit.study.spec import read_study

    if not 0 < args.half_width < 1:
        raise WqkitError(f"--half-width {args.half_width} is not a fraction between 0 and 1 (0.05: ±5 %)")
    study = read_study(Path(args.study))
    pilot = df_study(Path(args.pilot))
    plan = df_plan(pilot, args.half_width, tuple(args.stat or ()))
    if not len(plan):
        raise WqkitError(f"{args.pilot}: the pilot has no comparison to plan from (it needs two levels of a "
                         "factor, each in two boots or more)")
    print(f"# {study.name}: boots × runs per boot for ±{args.half_width:.0%} ratio intervals "
          f"({plan.attrs['boot_s']:.1f} s a boot in the pilot; Kalibera & Jones' cost-optimal runs per boot)")
    shown = plan.assign(sd_boot=plan["sd_boot"].map(lambda v: f"{v:.0%}"),
                        sd_run=plan["sd_run"].map(lambda v: "?" if v != v else f"{v:.0%}"),
                        lab_min=(plan["lab_s"] / 60).round(1),
                        pilot=[f"{r:.3f} [{lo:.3f}, {hi:.3f}]" for r, lo, hi in
                               zip(plan["pilot_ratio"], plan["pilot_low"], plan["pilot_high"])])
    print(shown[["experiment", "factor", "stratum", "stat", "level", "pilot", "sd_boot", "sd_run", "runs_per_boot",
                 "boots", "lab_min"]].to_string(index=False))
    per_lab = {lab: sum(p.lab == lab for p in study.points) for lab in study.labs}
    best = study_plan(pilot, per_lab, args.half_width, plan)
    print("(sd_boot of a paired comparison, one made within boots: its level × boot interaction)")
    if plan.attrs["unplannable"]:
        print(f"({plan.attrs['unplannable']} comparisons left out: a level with fewer than two boots in the pilot)")
    far = plan[plan["boots"] >= MAX_BOOTS]
    if len(far):
        print(f"{len(far)} comparisons would need {MAX_BOOTS} boots or more: their effects are too small or "
              "too noisy for this half-width")
    print(f"\nthe whole study, every comparison at ±{args.half_width:.0%}: boots = {best['boots']}, "
          f"runs_per_boot = {best['runs_per_boot']}: {len(study.labs) * best['boots']} boots, about "
          f"{best['lab_s'] / 3600:.1f} h of lab time on one slot")
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
    worker = commands.add_parser("worker", help="start this host's Dask workers for studies run with --scheduler "
                                 "(no shared disk needed: the client pulls each run)")
    worker.add_argument("scheduler", metavar="ADDRESS", help="the Dask scheduler, tcp://host:8786")
    worker.add_argument("--slots", type=int, metavar="N", help="VMs at once on this host, one worker process "
                        "each (default max(1, cores // --lab-cpus))")
    worker.add_argument("--lab-cpus", type=int, metavar="N",
                        help="the studies' lab CPUs, for the default --slots (default: the lab's, 2)")
    worker.add_argument("--listen", metavar="IP", help="the address the workers listen on (default: this host's "
                        "address on the route to the scheduler; 127.0.0.1 for a local one)")
    worker.set_defaults(func=cmd_study_worker)
    analyze = commands.add_parser("analyze", help="effects of each factor with t intervals over boots, adjusted "
                                 "for the study's many comparisons")
    analyze.add_argument("directory", metavar="DIR")
    analyze.add_argument("--factor", action="append", help="a factor to analyse (default: every varied one)")
    analyze.add_argument("--baseline", help="the level ratios are taken to (default: each factor's first)")
    analyze.add_argument("--pooled", action="store_true",
                         help="pool the runs of the other factors' levels (default: compare within each "
                              "combination of them)")
    analyze.set_defaults(func=cmd_study_analyze)
    plan = commands.add_parser("plan", help="boots and runs per boot for a wanted precision, from a pilot study")
    plan.add_argument("study", metavar="STUDY.toml")
    plan.add_argument("--pilot", required=True, metavar="DIR", help="a study directory run before (its variance "
                      "components and boot and run times)")
    plan.add_argument("--half-width", type=float, default=0.05, metavar="F",
                      help="the ratio intervals' wanted half-width, relative (default 0.05: ±5 %%)")
    plan.add_argument("--stat", action="append", metavar="STAT",
                      help="plan for this statistic only (p50, p99, makespan...; repeatable; default: all)")
    plan.set_defaults(func=cmd_study_plan)
