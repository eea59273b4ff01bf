"""Benchmark: the cost of CONFIG_WQ_MEASURE, patched kernel against vanilla.

Run by hand (it builds both kernels when not cached, and boots each once):
    .venv/bin/python benchmarks/patched_overhead.py [--nr 20000] [--runs 3] [--gap-us 20]

Both kernels come from the same Debian source and configuration; only the
patches and the option differ, so the ratio is the option's overhead (with
the module's items marked: the slowest case). Prints, per kernel, the
insert_exec median and p99 of each run and of all runs pooled, the ratio
patched / vanilla, and the accelerator (TCG figures are emulation timings).
"""

import argparse
import tempfile
from pathlib import Path

from wqkit import analysis
from wqkit.lab import LabSession
from wqkit.lab.build import build_kernel
from wqkit.experiments.runner import run_experiment
from wqkit.target import LabTarget


def measure(variant: str, nr: int, runs: int, gap_us: int, out: Path) -> tuple[list, str]:
    kernel = build_kernel(variant, progress=lambda m: print(f"{variant}: {m}", flush=True)).kernel()
    rows = []
    with LabSession(kernel=kernel, progress=lambda m: None) as lab:
        target = LabTarget(session=lab)
        for _ in range(runs):
            path = run_experiment("insert_exec", {"nr": nr, "gap_us": gap_us, "cpu": 0}, target=target,
                                  out=out / variant, progress=lambda m: None)
            rows.append(analysis.load_run(path))
        return rows, lab.accel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nr", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gap-us", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        medians = {}
        for variant in ("vanilla", "patched"):
            runs, accel = measure(variant, args.nr, args.runs, args.gap_us, Path(tmp))
            table = analysis.df_summary(runs)
            all_ns = sorted(v for r in runs for v in r.ns)
            p50 = all_ns[len(all_ns) // 2]
            p99 = all_ns[int(len(all_ns) * 0.99)]
            medians[variant] = (p50, p99)
            print(f"{variant} ({runs[0].meta['kernel_release']}, {accel.upper()}): "
                  f"per-run p50 {', '.join(analysis.format_duration(v) for v in table['p50_ns'])}; "
                  f"p99 {', '.join(analysis.format_duration(v) for v in table['p99_ns'])}; "
                  f"pooled p50 {analysis.format_duration(p50)}, p99 {analysis.format_duration(p99)}", flush=True)
        (v50, v99), (p50, p99) = medians["vanilla"], medians["patched"]
        print(f"patched / vanilla: p50 {p50 / v50:.3f}, p99 {p99 / v99:.3f} "
              f"(insert_exec nr={args.nr} gap_us={args.gap_us} cpu=0, {args.runs} runs each)")


if __name__ == "__main__":
    main()
