"""The registry of run kinds: each module experiment and each tracer declared once, everything read from it.

A toy tracer (tests/data/toy_tracer: one TOML and its bpftrace program) is
registered with WQKIT_TRACERS: the CLI, studies and load_run take it like
wqkit's own tracers, and the lab test runs it for real.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from wqkit.analysis.load import TraceRun, load_run
from wqkit.errors import WqkitError
from wqkit.paths import SOURCE_DIR
from wqkit.runs.kinds import read_tracer, run_kind, run_kinds, tracers
from wqkit.study.spec import read_study
from wqkit.trace.declared import parse_lines

TOY_DIR = SOURCE_DIR / "tests" / "data" / "toy_tracer"
WQKIT = [sys.executable, "-m", "wqkit.cli"]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setenv("WQKIT_TRACERS", str(TOY_DIR))
    return run_kind("toy_queue")


def test_a_toy_tracer_is_one_declaration_and_its_program(toy, tmp_path):
    assert toy.tracer and toy.command == "toy_queue" and toy.table == "events.parquet"
    assert {p.name for p in toy.params} == {"engine", "during", "duration", "timeout"}
    assert "toy_queue" in tracers() and "toy_queue" in run_kinds()
    # Its parameters and its load's, checked with the declared defaults filled in.
    own, load = toy.split({"during": "insert_exec", "nr": 50})
    assert own == {"engine": "bpftrace", "during": "insert_exec", "duration": 5.0, "timeout": 3600.0}
    assert load == {"nr": 50}
    with pytest.raises(WqkitError, match="engine='dtrace' is not one of bpftrace, bcc, both"):
        toy.split({"engine": "dtrace"})
    with pytest.raises(WqkitError, match="unknown parameters nr"):
        toy.split({"nr": 50})
    # The CLI offers it, with the declaration's options and help.
    proc = subprocess.run([*WQKIT, "trace", "toy_queue", "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "WQKIT_TRACERS": str(TOY_DIR)})
    assert proc.returncode == 0, proc.stderr
    help_text = " ".join(proc.stdout.split())
    for param in toy.params:
        flag = "--during" if param.name == "during" else param.cli_flag
        assert flag in help_text, flag
    assert "seconds to trace without during (0.1..3600.0 s, default 5.0)" in help_text
    # A study names it like any experiment; its load's parameters are factors too.
    study_file = tmp_path / "toy.toml"
    study_file.write_text('boots = 2\n[[experiment]]\nname = "toy_queue"\nparams = { during = "insert_exec" }\n'
                          '[factors]\nnr = [10, 20]\nengine = ["bpftrace", "bcc"]\n')
    assert sorted(p.key for p in read_study(study_file).points) == [
        "toy_queue|engine=bcc|nr=10", "toy_queue|engine=bcc|nr=20",
        "toy_queue|engine=bpftrace|nr=10", "toy_queue|engine=bpftrace|nr=20"]


def test_a_declared_tracer_s_lines_are_its_rows(toy):
    text = "ATTACHED\n\nQUEUED 0 8192\nQUEUED 1 1\nQUEUED x 2\nQUEUED 3\nOTHER 1 2\n"
    rows, truncated = parse_lines(toy, text)
    assert not truncated and list(rows.columns) == ["event", "cpu", "req_cpu"]
    assert rows.to_dict("records") == [{"event": "QUEUED", "cpu": 0, "req_cpu": 8192},
                                       {"event": "QUEUED", "cpu": 1, "req_cpu": 1}]


def test_load_run_dispatches_on_the_recorded_kind(toy, tmp_path):
    """Old worker traces (no ``kind`` in meta.json) load by their experiment's prefix; a run of the
    toy tracer loads its declared table."""
    old = SOURCE_DIR / "data" / "traces" / "trace-workers-creation-20261201-073336"
    assert "kind" not in json.loads((old / "meta.json").read_text())
    assert isinstance(load_run(old), TraceRun) and len(load_run(old).events)
    run = tmp_path / "toy-queue-1"
    shutil.copytree(old, run)
    meta = json.loads((run / "meta.json").read_text()) | {"kind": "toy_queue", "experiment": "toy_queue"}
    (run / "meta.json").write_text(json.dumps(meta))
    loaded = load_run(run)
    assert isinstance(loaded, TraceRun) and loaded.meta["kind"] == "toy_queue"
    assert "caller" in loaded.events           # as stored: only worker traces fill missing columns


@pytest.mark.parametrize("change, message", [
    (("tracer = \"toy_queue\"", "tracer = \"Toy\""), "'Toy' is not a tracer name"),
    (("program = \"toy_queue\"", "program = \"absent\""), "its program absent.bt .or .c. is not beside it"),
    (("program = \"toy_queue\"", "program = \"toy_queue\"\nrunner = \"x:y\""), "give either its runner or its program"),
    (("[[line]]\nevent = \"QUEUED\"\nfields = [\"cpu\", \"req_cpu\"]\n", ""), "a declared program needs its"),
    (("load_param = \"during\"", "load_param = \"while\""), "load_param 'while' is not one of its parameters"),
    (("type = \"float\"", "type = \"double\""), "type must be one of"),
    (("table = ", "tables = "), "missing table"),
    (("shared = \"engine\"", "shared = \"engines\""), "shared parameter 'engines' is not in tracer_params.toml"),
])
def test_bad_tracer_declarations_are_one_line_errors(tmp_path, change, message):
    text = (TOY_DIR / "toy_queue.toml").read_text()
    assert change[0] in text
    (tmp_path / "toy_queue.toml").write_text(text.replace(*change, 1))
    shutil.copy(TOY_DIR / "toy_queue.bt", tmp_path)
    with pytest.raises(WqkitError, match=message):
        read_tracer(tmp_path / "toy_queue.toml")


def test_a_module_cannot_take_a_tracer_s_parameter_type(tmp_path):
    from wqkit.runs.spec import read_spec

    (tmp_path / "m.c").write_text("")
    (tmp_path / "m.toml").write_text('module = "m"\nsource = "m.c"\ndescription = "d"\n[[param]]\nname = "x"\n'
                                     'type = "float"\ndefault = 1.0\nmin = 0.0\nmax = 2.0\nhelp = "h"\n')
    with pytest.raises(WqkitError, match="a module cannot take x"):
        read_spec(tmp_path / "m.toml")


def test_every_run_kind_s_cli_options_are_its_declaration(monkeypatch):
    """Each tracer's command offers exactly its declared parameters and its load's (no option of
    its own besides what it prints), each with the declaration's help."""
    from wqkit.cli import build_parser

    parser = build_parser()
    trace = next(a for a in parser._subparsers._group_actions[0].choices["trace"]._actions
                 if a.__class__.__name__ == "_SubParsersAction")
    for command, kind in tracers().items():
        sub = trace.choices[command]
        dests = {a.dest.removeprefix("exp_") for a in sub._actions if a.dest.startswith("exp_")}
        own = {p.name for p in kind.params if p.type != "experiment"} | {p.name for p in kind.load_options({})}
        assert dests == own, command
        for action in sub._actions:
            if action.dest.startswith("exp_"):
                name = action.dest.removeprefix("exp_")
                param = next((p for p in (*kind.params, *kind.load_options({})) if p.name == name))
                assert action.help == param.describe() and action.default is None, (command, name)


@pytest.mark.lab
def test_a_declared_tracer_runs_in_the_lab(toy, lab_target, tmp_path):
    """The toy tracer around insert_exec: one QUEUED row per work item the experiment queued, each
    queued from the CPU the experiment runs on."""
    path = toy.run({"during": "insert_exec", "nr": 60, "cpu": 0}, target=lab_target, out=tmp_path,
                   progress=lambda m: None)
    trace = load_run(path)
    experiment = load_run(path / trace.meta["experiment_run"])
    assert trace.ok and trace.meta["kind"] == "toy_queue" and trace.meta["engines"] == ["bpftrace"]
    queued = trace.events[trace.events["event"] == "QUEUED"]
    assert len(queued) == len(experiment.samples) == 60
    assert set(queued["cpu"]) == {0}
