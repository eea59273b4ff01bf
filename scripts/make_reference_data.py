"""Measure the small reference runs of data/ in the lab (one boot). Run by hand:

    .venv/bin/python scripts/make_reference_data.py

It replaces data/*; the runs are a few MB and record their own provenance.
"""

import shutil

from wqkit.paths import SOURCE_DIR
from wqkit.experiments.runner import run_experiment
from wqkit.target import LabTarget

REFERENCE_RUNS = [
    ("insert_exec", {"nr": 5000, "cpu": 0, "serial": True}),
    ("insert_exec", {"nr": 5000, "cpu": 0, "wq_flags": "unbound", "serial": True}),
    ("insert_exec", {"nr": 20000, "cpu": 0}),
    ("exec_time_pred", {"nr": 2000, "loops": 10000, "cpu": 0}),
    ("exec_time_pred", {"nr": 2000, "loops": 10000, "mem_kb": 256, "cpu": 0}),
]


def main() -> None:
    data = SOURCE_DIR / "data"
    staging = data.with_name(".data.new")
    shutil.rmtree(staging, ignore_errors=True)
    with LabTarget() as target:
        for name, values in REFERENCE_RUNS:
            run_experiment(name, values, target=target, out=staging)
    for old in data.glob("*-*"):
        shutil.rmtree(old)
    for run in sorted(staging.iterdir()):
        shutil.move(run, data / run.name)
    staging.rmdir()


if __name__ == "__main__":
    main()
