"""The declarations against the kernel: every module's parameters as modinfo and the kernel see them,
and an experiment of one's own, scaffolded outside the repository, built, run and analysed."""

import os
import re
import subprocess
import sys

import pytest

from wqkit.analysis.load import load_run
from wqkit.errors import WqkitError
from wqkit.experiments import kmod
from wqkit.runs import spec
from wqkit.experiments.runner import run_experiment
from wqkit.experiments.scaffold import new_experiment
from wqkit.paths import SOURCE_DIR

pytestmark = pytest.mark.lab
WQKIT = [sys.executable, "-m", "wqkit.cli"]


def test_modinfo_shows_every_declared_parameter(lab_target):
    built = kmod.build(lab_target, progress=lambda m: None)
    for module in spec.modules().values():
        out = subprocess.run(["/sbin/modinfo", "-F", "parm", str(built / f"{module.name}.ko")], capture_output=True,
                             text=True, check=True).stdout
        shown = dict(re.match(r"(\w+):(.*?)(?: \(\w+\))?$", line).groups() for line in out.splitlines() if line)
        assert shown == {p.name: p.describe() for p in module.params}, module.name


def test_the_kernel_refuses_each_declared_bound(lab_target):
    """Each integer parameter one past its declared maximum: the module answers -EINVAL and names
    it; at its declared default it reads back the same through /sys/module (modules that run
    nothing at load time)."""
    built = kmod.build(lab_target, progress=lambda m: None)
    checked = 0
    for module in spec.modules().values():
        for param in (p for p in module.params if p.type in ("uint", "int", "flags")):
            mark = kmod.log_mark(lab_target)
            result = lab_target.run(f"insmod {built / module.name}.ko {param.name}={param.max + 1}")
            assert result.returncode, (module.name, param.name)
            log = "\n".join(kmod.log_since(lab_target, mark))
            assert f"{param.name}={param.max + 1} is out of range ({param.min}..{param.max})" in log, log
            checked += 1
    assert checked >= 20
    for name in ("wq_fixture", "wq_worker_death"):
        module = spec.module_spec(name)
        with kmod.loaded(lab_target, name, {}):
            for param in (p for p in module.params if p.settable):
                value = lab_target.run(f"cat /sys/module/{name}/parameters/{param.name}", check=True).stdout
                assert int(value) == param.default, (name, param.name)


def test_an_experiment_of_ones_own_runs_from_outside_the_repository(lab_target, tmp_path, monkeypatch):
    before = subprocess.run(["git", "-C", str(SOURCE_DIR), "status", "--porcelain"], capture_output=True,
                            text=True).stdout
    home = new_experiment("my_wait", tmp_path)
    declaration = home / "my_wait.toml"
    text = declaration.read_text()
    text = text.replace("default = 1000\nmin = 1\nmax = 1_000_000", "default = 300\nmin = 1\nmax = 5000")
    declaration.write_text(text)
    monkeypatch.setenv(spec.ENV, str(tmp_path))
    env = {**os.environ, spec.ENV: str(tmp_path)}

    # The changed range, in Python before anything boots, and in the kernel.
    refused = subprocess.run([*WQKIT, "run", "my_wait", "--nr", "6000"], capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "nr=6000 is out of range (1..5000)" in refused.stderr, refused.stderr
    with pytest.raises(WqkitError, match=r"nr=6000 is out of range \(1\.\.5000\)"):
        kmod.loaded(lab_target, "wq_my_wait", {"nr": 6000}).__enter__()
    built = kmod.build(lab_target, progress=lambda m: None)
    mark = kmod.log_mark(lab_target)
    assert lab_target.run(f"insmod {built}/wq_my_wait.ko nr=6000").returncode
    assert any("nr=6000 is out of range (1..5000)" in line for line in kmod.log_since(lab_target, mark))

    # Its default run, then its analysis.
    path = run_experiment("my_wait", {}, target=lab_target, out=tmp_path / "runs", progress=lambda m: None)
    run = load_run(path)
    assert run.ok and len(run.samples) == 300 and run.meta["samples"]["dropped"] == 0
    assert run.meta["parameters"]["nr"] == "300" and run.meta["module"] == "wq_my_wait"
    assert (run.samples["cycles"] > 0).all()
    analysed = subprocess.run([*WQKIT, "analyze", str(path), "--output-dir", str(tmp_path / "out")],
                              capture_output=True, text=True, env=env)
    assert analysed.returncode == 0, analysed.stderr
    assert "my_wait" in analysed.stdout
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert path.name in summary and "work start" in summary
    after = subprocess.run(["git", "-C", str(SOURCE_DIR), "status", "--porcelain"], capture_output=True,
                           text=True).stdout
    assert after == before, "the experiment touched the repository"
