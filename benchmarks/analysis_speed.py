"""Benchmark: analysis time for 10^6 and 10^7 samples, next to the naive path.

Run by hand:  .venv/bin/python benchmarks/analysis_speed.py [--sizes 1000000 10000000]

wqkit path: load the run (Parquet), summary with the median's bootstrap CI,
outliers, per-CPU table, and every plot of the run written as PNG.
Naive path (the baseline), on the same samples: pandas read_csv of a text
export, describe(), a histogram and a plot of every point, written as PNG.
Both paths run --repeat times, alternately, after one warm-up figure (the
first figure of a process pays for font loading, whichever path draws it);
prints the median of each and the ratio naive / wqkit (> 1: wqkit is faster
while doing more). Targets: 10^7 samples in at most 4 s, never slower than naive.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from wqkit import analysis  # noqa: E402
from wqkit.analysis.synthetic import write_synthetic_run  # noqa: E402


def wqkit_path(run_dir: Path, out: Path) -> float:
    start = time.perf_counter()
    run = analysis.load_run(run_dir)
    analysis.df_summary([run])
    analysis.df_outliers(run)
    analysis.df_per_cpu(run)
    analysis.write_plots([run], out)
    return time.perf_counter() - start


def naive_path(csv: Path, out: Path) -> float:
    start = time.perf_counter()
    frame = pd.read_csv(csv)
    frame["cycles"].describe()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    left.hist(frame["cycles"], bins=100)
    right.plot(frame["cycles"].to_numpy(), ".", markersize=1)
    fig.savefig(out / "naive.png", dpi=100)
    plt.close(fig)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:   # warm-up: fonts and the Agg canvas
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        fig.savefig(Path(tmp) / "warm-up.png")
        plt.close(fig)
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            cycles = rng.lognormal(9, 0.5, n).astype(np.int64) + 1
            cpus = rng.integers(0, 2, n)
            run_dir = write_synthetic_run(tmp / "run", cycles, cpu_queue=cpus, cpu_exec=cpus)
            pd.read_parquet(run_dir / "samples.parquet").to_csv(tmp / "samples.csv", index=False)
            (tmp / "out").mkdir()
            fast, naive = [], []
            for _ in range(args.repeat):
                fast.append(wqkit_path(run_dir, tmp / "out"))
                naive.append(naive_path(tmp / "samples.csv", tmp / "out"))
            fast_s, naive_s = statistics.median(fast), statistics.median(naive)
            print(f"{n:>11,} samples: wqkit {fast_s:6.2f} s (load, summary+CI, outliers, per-CPU, 5 plots); "
                  f"naive {naive_s:6.2f} s (read_csv, describe, hist, every point); "
                  f"ratio naive/wqkit {naive_s / fast_s:.2f} (medians of {args.repeat})")


if __name__ == "__main__":
    main()
