"""Notebooks (papermill), HTML reports and `wqkit analyze` on the reference runs of data/."""

import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import papermill
import pytest

from wqkit.analysis import find_runs
from wqkit.errors import WqkitError
from wqkit.lab import resolve_kernel
from wqkit.notebook import measure_or_load, trace_or_load
from wqkit.paths import SOURCE_DIR
from wqkit.report import make_report

from conftest import assert_flood_workers_traced

NOTEBOOKS = sorted((SOURCE_DIR / "notebooks").glob("*.ipynb"))
EXPERIMENT_NOTEBOOKS = [SOURCE_DIR / "notebooks" / f"{name}.ipynb" for name in ("insert_exec", "exec_time_pred")]
DATA = SOURCE_DIR / "data"
WQKIT = [sys.executable, "-m", "wqkit.cli"]


def outputs_text(path) -> str:
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            parts.append(out.get("text", "") + data.get("text/plain", "") + data.get("text/markdown", ""))
    return "\n".join(parts)


def test_executed_notebooks_in_data_are_committed_without_outputs():
    """A shipped report keeps its outputs in its HTML; its executed notebook (which the report
    index reads for papermill's parameters) is committed stripped."""
    executed = sorted(DATA.rglob("*.ipynb"))
    assert executed
    for path in executed:
        code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path}: strip its outputs"


def test_there_are_the_two_experiment_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"insert_exec", "exec_time_pred", "monitor"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_paired(notebook):
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs (nbstripout)"
    assert "parameters" in nb.cells[0].metadata.get("tags", [])
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    paired = jupytext.read(notebook.with_suffix(".py"))
    assert [c.source for c in paired.cells] == [c.source for c in nb.cells], "run jupytext --sync"


@pytest.mark.parametrize("notebook", EXPERIMENT_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_on_reference_data(notebook, tmp_path):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(notebook), str(out), parameters={"data_dir": str(DATA)},
                               cwd=str(SOURCE_DIR), progress_bar=False)
    text = outputs_text(out)
    assert re.search(r"p50 \((ns|µs|ms)\)", text) and "p99.9 (" in text
    assert "emulation timings" in text
    assert any(run.name in text for run in find_runs(DATA))
    assert not re.search(r"\d\.\d{5,}", text), "numbers are shown with a few significant digits"
    assert str(SOURCE_DIR) not in text, "no path of the machine that made it"
    images = [o["data"]["image/png"] for c in nbformat.read(out, as_version=4).cells
              for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 5 and len(set(images)) == len(images), "each declared plot, shown once"


@pytest.mark.lab
@pytest.mark.parametrize("notebook", EXPERIMENT_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_with_a_live_lab_run(notebook, lab_kernel_spec, tmp_path):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(notebook), str(out), parameters={"nr": 1000, "out": str(tmp_path / "runs"),
                                                                    "kernel": lab_kernel_spec},
                               cwd=str(SOURCE_DIR), progress_bar=False)
    (run,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "ok" and meta["samples"]["collected"] == 1000
    assert meta["kernel_release"] == resolve_kernel(lab_kernel_spec).release
    text = outputs_text(out)
    assert "p50 (" in text and run.name in text


def test_html_report_embeds_images_and_parameters(tmp_path):
    page = make_report(SOURCE_DIR / "notebooks" / "insert_exec.ipynb", {"data_dir": str(DATA)}, tmp_path)
    html = page.read_text()
    assert html.count("data:image/png;base64,") >= 5
    assert "param nr" in html and "param wq_flags" in html
    assert "measure_or_load" not in html          # code hidden by default
    assert "<img src=\"http" not in html and "src=\"insert_exec" not in html
    index = (tmp_path / "index.html").read_text()
    assert page.name in index and "data_dir" in index
    with_code = make_report(SOURCE_DIR / "notebooks" / "insert_exec.ipynb", {"data_dir": str(DATA)}, tmp_path,
                            with_code=True)
    assert "measure_or_load" in with_code.read_text()
    assert (tmp_path / "index.html").read_text().count("<tr><td>") == 2


def test_analyze_writes_summary_and_plots(tmp_path):
    proc = subprocess.run([*WQKIT, "analyze", str(DATA), "--output-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = find_runs(DATA)
    summary = pd.read_csv(tmp_path / "summary.csv", index_col="run")
    assert sorted(summary.index) == sorted(r.name for r in runs)
    assert json.loads((tmp_path / "summary.json").read_text()).keys() == set(summary.index)
    for run in runs:
        for suffix in ("histogram.png", "timeseries.png", "per-cpu.png", "per-cpu.csv", "outliers.csv"):
            assert (tmp_path / f"{run.name}-{suffix}").stat().st_size > 0
        assert run.name in proc.stdout
    assert (tmp_path / "cdf.png").exists() and (tmp_path / "ccdf.png").exists()
    assert "emulation timings" in proc.stdout


def test_analyze_refuses_a_truncated_run_in_one_line(tmp_path):
    run = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(find_runs(DATA)[0]), str(run)], check=True)
    samples = run / "samples.parquet"
    samples.write_bytes(samples.read_bytes()[: samples.stat().st_size // 2])
    proc = subprocess.run([*WQKIT, "analyze", str(run)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == proc.stderr.strip().splitlines()[0]
    assert "samples.parquet: unreadable Parquet" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.lab
def test_monitor_notebook_renders_static_snapshots(lab_kernel_spec, tmp_path):
    out = tmp_path / "monitor.ipynb"
    papermill.execute_notebook(str(SOURCE_DIR / "notebooks" / "monitor.ipynb"), str(out),
                               parameters={"snapshots": 3, "interval": 1.0, "kernel": lab_kernel_spec},
                               cwd=str(SOURCE_DIR), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    assert sum("text/html" in o.get("data", {}) for o in outputs) >= 4
    text = outputs_text(out)
    assert f"3 snapshots of {resolve_kernel(lab_kernel_spec).release}" in text
    assert " ├─flags=0x" in text and "rate started=" in text


@pytest.mark.lab
def test_new_worker_notebook_shows_the_pool_over_time(lab_kernel_spec, tmp_path):
    out = tmp_path / "new_worker.ipynb"
    papermill.execute_notebook(str(SOURCE_DIR / "notebooks" / "new_worker.ipynb"), str(out),
                               parameters={"nr_work_max": 16, "delay": 20, "hold_ms": 300, "sample_hz": 20,
                                           "out": str(tmp_path / "runs"), "kernel": lab_kernel_spec},
                               cwd=str(SOURCE_DIR), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "meta.json").read_text())["state_sampling"]["samples"] > 0
    assert "distinct kworkers ran 16 work items" in outputs_text(out)


@pytest.mark.lab
def test_kserver_notebook_runs_a_graph_and_a_sweep(lab_kernel_spec, tmp_path):
    out = tmp_path / "kserver.ipynb"
    papermill.execute_notebook(str(SOURCE_DIR / "notebooks" / "kserver.ipynb"), str(out),
                               parameters={"size": "width=3,depth=1", "cost": "busy:5000", "repetitions": 2,
                                           "sweep": True, "out": str(tmp_path / "runs"), "kernel": lab_kernel_spec},
                               cwd=str(SOURCE_DIR), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    text = outputs_text(out)
    assert "5 tasks, 6 edges" in text and "p50_makespan (" in text
    # The notebook's run and the sweep's four configurations.
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 5
    assert {json.loads((run / "meta.json").read_text())["kernel_release"] for run in runs} == \
        {resolve_kernel(lab_kernel_spec).release}


TRACE_NOTEBOOKS = [SOURCE_DIR / "notebooks" / f"worker_{kind}.ipynb" for kind in ("creation", "death")]


@pytest.mark.parametrize("kind", ["creation", "die"])
def test_traces_are_found_from_a_run_or_a_directory_above_it(kind):
    (run,) = (DATA / "traces").glob(f"trace-workers-{kind}-*")
    for data_dir in (run, DATA / "traces", DATA):
        trace = trace_or_load(kind, data_dir)
        meta, events = trace.meta, trace.events
        assert meta["experiment"] == f"trace_workers_{kind}" and len(events)
    with pytest.raises(WqkitError, match="no trace_workers_.* run that ended ok"):
        trace_or_load("creation" if kind == "die" else "die", run)


def test_notebooks_take_the_newest_ok_run_of_their_kind(tmp_path, capsys):
    # A shared runs/ directory: an ok insert_exec run, a newer failed one, and a trace run.
    import shutil

    ok = next(p for p in find_runs(DATA) if p.name.startswith("insert_exec-"))
    shutil.copytree(ok, tmp_path / ok.name)
    failed = tmp_path / "insert_exec-29991231-000000"
    shutil.copytree(ok, failed)
    meta = json.loads((failed / "meta.json").read_text())
    meta.update(status="failed", error="interrupted", started_at="2999-12-31T00:00:00+00:00")
    (failed / "meta.json").write_text(json.dumps(meta))
    (trace,) = (DATA / "traces").glob("trace-workers-creation-*")
    shutil.copytree(trace, tmp_path / trace.name)

    run = measure_or_load("insert_exec", tmp_path)
    assert run.path.name == ok.name and run.ok
    assert f"passing over {failed.name}, newer but failed" in capsys.readouterr().err
    trace = trace_or_load("creation", tmp_path)
    meta, events = trace.meta, trace.events
    assert meta["experiment"] == "trace_workers_creation" and len(events)
    with pytest.raises(WqkitError, match="no exec_time_pred run that ended ok"):
        measure_or_load("exec_time_pred", tmp_path)


@pytest.mark.parametrize("notebook", TRACE_NOTEBOOKS, ids=lambda p: p.stem)
def test_worker_notebook_on_reference_traces(notebook, tmp_path):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(notebook), str(out), parameters={"data_dir": str(DATA / "traces")},
                               cwd=str(SOURCE_DIR), progress_bar=False)
    text = outputs_text(out)
    assert "emulation timings" in text and "bpftrace" in text and "bcc" in text
    assert re.search(r"p50 \((µs|ms)\)", text)
    assert not re.search(r"\d\.\d{6,}", text), "numbers are shown with 4 significant digits"
    images = sum("image/png" in o.get("data", {}) for c in nbformat.read(out, as_version=4).cells
                 for o in c.get("outputs", []))
    assert images >= (2 if "creation" in notebook.stem else 1)


@pytest.mark.lab
def test_worker_creation_notebook_with_a_live_trace(lab_kernel_spec, tmp_path):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(TRACE_NOTEBOOKS[0]), str(out),
                               parameters={"engine": "bpftrace", "delay": 20, "nr_work_max": 12,
                                           "out": str(tmp_path / "runs"), "kernel": lab_kernel_spec},
                               cwd=str(SOURCE_DIR), progress_bar=False)
    (run,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "ok" and meta["engines"] == ["bpftrace"]
    assert meta["kernel_release"] == resolve_kernel(lab_kernel_spec).release
    assert_flood_workers_traced(meta, pd.read_parquet(run / "events.parquet"), "bpftrace")
    assert "p50 (" in outputs_text(out)


STUDY_FILES = sorted((SOURCE_DIR / "studies").glob("*.toml"))


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_each_shipped_study_has_its_results_and_report(path):
    """data/studies/NAME holds what `wqkit study run` made of the study file as it is now (its
    grid digest), every run ok, with its analysis and its HTML report."""
    from wqkit.study.spec import read_study

    study = read_study(path)
    result = DATA / "studies" / study.name
    meta = json.loads((result / "study.json").read_text())
    assert meta["digest"] == study.digest, f"{path.name} changed since it ran: run it again"
    index = pd.read_parquet(result / "study.parquet")
    assert len(index) == study.runs and (index["status"] == "ok").all()
    assert all((result / d / "meta.json").is_file() for d in index["run_dir"])
    if (SOURCE_DIR / ".git").exists():      # in the repository, not only in this working tree
        tracked = subprocess.run(["git", "-C", str(SOURCE_DIR), "ls-files", str(result / "runs")],
                                 capture_output=True, text=True, check=True).stdout
        assert {f"runs/{Path(line).parts[4]}" for line in tracked.split()} >= set(index["run_dir"]), \
            "every run directory is tracked (a .gitignore rule hid them once)"
    assert list((result / "analysis").glob("effects-*.png")) and list((result / "report").glob("study-*.html"))


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_study_notebook_on_a_shipped_study(path, tmp_path):
    from wqkit.analysis.study import df_study, study_benchmarks, study_effects, study_placements

    result = DATA / "studies" / path.stem
    out = tmp_path / "study.ipynb"
    papermill.execute_notebook(str(SOURCE_DIR / "notebooks" / "study.ipynb"), str(out),
                               parameters={"study_dir": str(result)}, cwd=str(SOURCE_DIR), progress_bar=False)
    text = outputs_text(out)
    table = df_study(result)
    sections = list(study_effects(table))
    assert f"{len(table)} ok runs" in text and "TCG: emulation timings" in text and "95% CI" in text
    assert all(f"{factor} (baseline {effects.attrs['baseline']})" in text for _, factor, effects, _ in sections)
    images = [o["data"]["image/png"] for c in nbformat.read(out, as_version=4).cells
              for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    extras = len(study_placements(result, table)) + len(study_benchmarks(result, table))    # a plot each
    assert len(images) == 2 * len(sections) + extras and len(set(images)) == len(images), \
        "effects and run order, once each, then placement and benchmark plots"
    assert all(f"{name}: where the items ran" in text for name in study_placements(result, table))


def test_a_notebook_s_data_path_means_the_same_from_jupyterlab(monkeypatch):
    """JupyterLab runs the kernel in notebooks/: the parameters' data/... paths still find the data."""
    from wqkit.notebook import repository_path

    monkeypatch.chdir(SOURCE_DIR / "notebooks")
    assert repository_path("data/studies/flags_latency") == DATA / "studies" / "flags_latency"
    assert repository_path("study.py") == Path("study.py"), "what is found here is taken as it is"
    assert repository_path("no/such/dir") == Path("no/such/dir"), "left for the caller's own error"
