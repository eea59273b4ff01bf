"""Benchmark: the tracers' start-up (request → probes attached) and their cost per traced event.

Run by hand (one lab session for everything):
    .venv/bin/python benchmarks/tracers.py [--repeats 2] [--nr 20000] [--gap-us 20] [--rounds 2]

(a) Attach time per engine and program: from starting the tracer in the guest
    to its ATTACHED line, printed once every probe is attached (bpftrace: its
    BEGIN probe; parse, BTF, load, attach; BCC: clang
    compile of the C text, BTF offsets, load). Target: at most 15 s under TCG
    for at least one engine.
(b) Overhead on the queue_work path: the insert_exec median (module samples)
    with no tracer, with the bpftrace latency tracer attached, with the BCC
    one and with both at once, same session, same parameters, in alternating
    rounds; prints each median and the ratio traced / untraced, and the
    accelerator (TCG figures are emulation timings).
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from wqkit import analysis
from wqkit.lab import LabSession
from wqkit.experiments.runner import run_experiment
from wqkit.target import LabTarget
from wqkit.trace.engine import ENGINES, Tracing
from wqkit.analysis.load import load_run
from wqkit.trace.latency import latency_program, trace_latency
from wqkit.trace.workers import worker_program


def attach_times(target: LabTarget, repeats: int) -> None:
    quiet = lambda message: None     # noqa: E731
    for program in (worker_program(target, "creation"), latency_program(["insert_exec"])):
        for engine in ENGINES:
            times = []
            for _ in range(repeats):
                with Tracing(target, [engine], program, quiet) as tracing:
                    times.append(tracing.tracers[0].attach_s)
            print(f"attach {engine:8} {program.name:16}: {', '.join(f'{t:.1f} s' for t in times)} "
                  f"(median {statistics.median(times):.1f} s)", flush=True)


def overhead(target: LabTarget, nr: int, gap_us: int, rounds: int, out: Path) -> None:
    values = {"nr": nr, "gap_us": gap_us, "cpu": 0}
    medians: dict[str, list[float]] = {"none": [], **{engine: [] for engine in ENGINES}, "both": []}
    for _ in range(rounds):
        for mode in medians:
            if mode == "none":
                run = run_experiment("insert_exec", values, target=target, out=out, progress=lambda m: None)
            else:
                traced = trace_latency(engine=mode, during="insert_exec", values=values, target=target, out=out,
                                       progress=lambda m: None)
                run = traced / load_run(traced).meta["experiment_run"]
            medians[mode].append(analysis.df_summary([analysis.load_run(run)])["p50_ns"].iloc[0])
    base = statistics.median(medians["none"])
    for mode, values_ns in medians.items():
        median = statistics.median(values_ns)
        print(f"insert_exec p50 with {mode:8}: {', '.join(analysis.format_duration(v) for v in values_ns)}; "
              f"median {analysis.format_duration(median)}, ratio to none {median / base:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="attaches per engine and program (0: skip)")
    parser.add_argument("--nr", type=int, default=20_000)
    parser.add_argument("--gap-us", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="insert_exec runs per mode (0: skip)")
    args = parser.parse_args()
    if args.repeats < 0 or args.rounds < 0:
        parser.error("--repeats and --rounds take 0 or more")
    with LabSession(progress=lambda m: None) as lab, tempfile.TemporaryDirectory() as tmp:
        target = LabTarget(session=lab)
        print(f"lab: {target.release} under {lab.accel.upper()}", flush=True)
        if args.repeats:
            attach_times(target, args.repeats)
        if args.rounds:
            overhead(target, args.nr, args.gap_us, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
