"""HTML reports: execute a notebook with papermill, export it as one self-contained file.

Each report is ``REPORTS/NAME-STAMP.html`` (images embedded as data URIs, code
hidden unless asked) next to the executed ``.ipynb``; ``index.html`` lists
every report with its parameters and date. A report shows results only: the
notebook runs with ``WQKIT_REPORT=1`` so that progress goes to the terminal
(see wqkit.console), and anything a cell still wrote to stderr is moved from
the page to ``NAME-STAMP.log`` beside it.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import Mapping

from wqkit.console import REPORT_ENV
from wqkit.errors import WqkitError


def execute(notebook: Path, parameters: Mapping[str, object], executed: Path) -> Path:
    """Run ``notebook`` with papermill and the given parameters into ``executed``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    if not notebook.is_file():
        raise WqkitError(f"{notebook}: no such notebook")
    previous = os.environ.get(REPORT_ENV)
    os.environ[REPORT_ENV] = "1"      # inherited by the notebook's kernel
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=dict(parameters),
                                   cwd=str(Path.cwd()), progress_bar=False, log_output=False)
    except PapermillExecutionError as exc:
        raise WqkitError(f"{notebook.name} failed in cell {exc.exec_count}: {exc.ename}: "
                         f"{str(exc.evalue).splitlines()[0] if exc.evalue else ''}") from None
    finally:
        if previous is None:
            del os.environ[REPORT_ENV]
        else:
            os.environ[REPORT_ENV] = previous
    return executed


def export_html(executed: Path, html_file: Path, with_code: bool = False) -> Path:
    """Export an executed notebook to a single HTML file (images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=not with_code, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    nb = nbformat.read(executed, as_version=4)
    logged = []
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                logged.append(output.get("text", ""))
            else:
                kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    if logged:
        html_file.with_suffix(".log").write_text("".join(logged))
    body, _ = exporter.from_notebook_node(nb)
    html_file.write_text(body)
    return html_file


def make_report(notebook: Path, parameters: Mapping[str, object], reports: Path,
                with_code: bool = False) -> Path:
    """Execute and export one report, then rewrite the index; return the HTML path."""
    reports.mkdir(parents=True, exist_ok=True)
    stem = f"{notebook.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    executed = execute(notebook, parameters, reports / f"{stem}.ipynb")
    page = export_html(executed, reports / f"{stem}.html", with_code)
    write_index(reports)
    return page


def write_index(reports: Path) -> Path:
    """``index.html``: every report of the directory, newest first, with its parameters."""
    rows = []
    for executed in sorted(reports.glob("*.ipynb"), reverse=True):
        page = executed.with_suffix(".html")
        if not page.exists():
            continue
        meta = json.loads(executed.read_text()).get("metadata", {}).get("papermill", {})
        params = ", ".join(f"{k}={v!r}" for k, v in meta.get("parameters", {}).items())
        date = meta.get("end_time") or time.strftime("%Y-%m-%d %H:%M", time.localtime(page.stat().st_mtime))
        rows.append(f"<tr><td><a href=\"{html.escape(page.name)}\">{html.escape(executed.stem)}</a></td>"
                    f"<td>{html.escape(params)}</td><td>{html.escape(str(date))}</td></tr>")
    index = reports / "index.html"
    index.write_text(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>wqkit reports</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 10px;text-align:left}</style></head>"
        "<body><h1>wqkit reports</h1><table><tr><th>report</th><th>parameters</th><th>date</th></tr>"
        + "".join(rows) + "</table></body></html>\n")
    return index
