"""Benchmark: runs per hour of a small study, one boot per run against the study engine.

Run by hand on an idle machine (it boots the lab many times):
    .venv/bin/python benchmarks/study_throughput.py [--boots 2] [--runs-per-boot 2] [--nr 500] [--external]

The same grid (insert_exec, wq_flags percpu/unbound × serial false/true) is
run three ways: sequentially with a fresh lab per run (what a script of
`wqkit run` lines does), then by `wqkit.study` on a LocalCluster of 1 and of
2 VM slots, each planned boot (a block's runs) in a guest of its own. With
``--external``, also on an external cluster as a cluster without a shared
disk runs it: a ``dask scheduler`` process and ``wqkit study worker`` with 1,
then 2, worker processes (one VM slot each), every run pulled back by the
client. Prints runs per hour, boots per run, the bytes moved per run and the
ratio to the sequential baseline. On this 2-core TCG machine 2 slots
oversubscribe the cores: its timings are not measurements, only its
throughput is.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from wqkit.experiments.runner import run_experiment
from wqkit.study.engine import ClusterChoice, run_study
from wqkit.study.order import schedule
from wqkit.study.spec import read_study

STUDY = """
name = "throughput"
seed = 1
boots = {boots}
runs_per_boot = {runs_per_boot}
[[experiment]]
name = "insert_exec"
params = {{ nr = {nr} }}
[factors]
wq_flags = ["percpu", "unbound"]
serial = [false, true]
"""


def _boots(run_dirs: list[Path]) -> int:
    return len({json.loads((d / "meta.json").read_text())["lab"]["session"] for d in run_dirs})


def sequential(study, out: Path) -> tuple[float, int, int]:
    started = time.monotonic()
    dirs = [run_experiment(run.point.experiment, dict(run.point.params), out=out, progress=lambda m: None)
            for run in schedule(study)]
    return time.monotonic() - started, len(dirs), _boots(dirs)


def engine(study, out: Path, slots: int, scheduler: str | None = None) -> tuple[float, int, int, float]:
    started = time.monotonic()
    index = run_study(study, out, ClusterChoice(slots=slots, scheduler=scheduler, allow_oversubscribe=True),
                      progress=lambda m: None)
    elapsed = time.monotonic() - started
    ok = index[index["status"] == "ok"]
    return elapsed, len(ok), _boots([out / d for d in ok["run_dir"]]), float(ok["bytes_moved"].mean())


@contextmanager
def external_cluster(tmp: Path, workers: int):
    """A ``dask scheduler`` process on 127.0.0.1 and ``wqkit study worker --slots WORKERS``: the
    scheduler's address, once every worker has joined."""
    from distributed import Client

    info = tmp / f"scheduler-{workers}.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        while not (info.is_file() and info.stat().st_size):
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, "-m", "wqkit.cli", "study", "worker", address,
                                       "--slots", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=2)
    parser.add_argument("--runs-per-boot", type=int, default=2)
    parser.add_argument("--nr", type=int, default=500)
    parser.add_argument("--external", action="store_true",
                        help="also on an external cluster (dask scheduler + wqkit study worker), 1 and 2 workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "throughput.toml"
        path.write_text(STUDY.format(boots=args.boots, runs_per_boot=args.runs_per_boot, nr=args.nr))
        study = read_study(path)
        print(f"{study.runs} runs of insert_exec nr={args.nr} (4 points × {args.boots} boots × "
              f"{args.runs_per_boot} runs per boot)", flush=True)
        rows = [("sequential, one boot per run", *sequential(study, Path(tmp) / "sequential"), float("nan"))]
        print(f"  {rows[-1][0]}: {rows[-1][1]:.0f} s", flush=True)
        for slots in (1, 2):
            rows.append((f"study engine, {slots} slot{'s' * (slots > 1)}",
                         *engine(study, Path(tmp) / f"slots{slots}", slots)))
            print(f"  {rows[-1][0]}: {rows[-1][1]:.0f} s", flush=True)
        for workers in (1, 2) if args.external else ():
            with external_cluster(Path(tmp), workers) as address:
                rows.append((f"external cluster, {workers} worker{'s' * (workers > 1)}",
                             *engine(study, Path(tmp) / f"external{workers}", workers, address)))
            print(f"  {rows[-1][0]}: {rows[-1][1]:.0f} s", flush=True)
    baseline = rows[0][2] / rows[0][1] * 3600
    print(f"\n{'':32} {'runs/h':>8} {'boots/run':>10} {'KiB/run':>8} {'ratio':>7}")
    for name, seconds, runs, boots, moved in rows:
        per_hour = runs / seconds * 3600
        print(f"{name:32} {per_hour:8.0f} {boots / runs:10.2f} {moved / 1024:8.0f} {per_hour / baseline:6.2f}×")


if __name__ == "__main__":
    main()
