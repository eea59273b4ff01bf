"""Benchmark: the tracers' start-up (request → probes attached) and their cost per traced event.

Run by hand (one lab session for everything):
    .venv/bin/python benchmarks/tracers.py [--repeats 2] [--nr 20000] [--gap-us 20] [--rounds 2]

(a) Attach time per engine and program: from asking for the tracer to its
    ATTACHED line, printed once every probe is attached (bpftrace: its BEGIN
    probe, after parsing, compiling, loading and attaching in the guest; bcc:
    the loader, after loading and attaching the CO-RE object built on the
    host). For bcc the first attach is also timed with the host's build cache
    emptied (vmlinux.h, the object and the loader built again). Target: at
    most 5 s under TCG for each engine and program, cached; before the host
    build, BCC compiled in the guest for about 30 s.
(b) Overhead on the queue_work path: the insert_exec median (module samples)
    with no tracer, with the bpftrace latency tracer attached, with the BCC
    one and with both at once, same session, same parameters, in alternating
    rounds; prints each median and the ratio traced / untraced, and the
    accelerator (TCG figures are emulation timings).
"""

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from wqkit import analysis
from wqkit.lab import LabSession
from wqkit.paths import cache_dir
from wqkit.experiments.runner import run_experiment
from wqkit.target import LabTarget
from wqkit.trace.engine import ENGINES, Tracing
from wqkit.analysis.load import load_run
from wqkit.trace.latency import latency_program, trace_latency
from wqkit.trace.workers import worker_program


#: The target of an attach, cached (seconds).
ATTACH_TARGET_S = 5.0


def attach_s(target: LabTarget, engine: str, program) -> float:
    with Tracing(target, [engine], program, lambda message: None) as tracing:
        return tracing.tracers[0].attach_s


def attach_times(target: LabTarget, repeats: int) -> None:
    programs = (worker_program(target, "creation"), worker_program(target, "die"), latency_program(["insert_exec"]))
    for program in programs:
        for engine in ENGINES:
            cold = ""
            if engine == "bcc":
                shutil.rmtree(cache_dir() / "bpf", ignore_errors=True)
                cold = f"; first, host cache emptied: {attach_s(target, engine, program):.2f} s"
            times = [attach_s(target, engine, program) for _ in range(repeats)]
            median = statistics.median(times)
            print(f"attach {engine:8} {program.name:16}: {', '.join(f'{t:.2f} s' for t in times)} "
                  f"(median {median:.2f} s, {median / ATTACH_TARGET_S:.2f} of the {ATTACH_TARGET_S:g} s target"
                  f"{cold})", flush=True)


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
