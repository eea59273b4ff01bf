"""What a user sees in a browser (Debian's Chromium, driven by Playwright): the live dashboard
of notebooks/monitor.ipynb in JupyterLab, and an HTML report."""

import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import qemu_processes
from wqkit.paths import SOURCE_DIR
from wqkit.report import make_report
from wqkit.workbench import NOTEBOOKS, jupyterlab_command

CHROMIUM = shutil.which("chromium")
#: The test's JupyterLab settings: every cell attached to the page (not only those in view),
#: and no "get notified about Jupyter news?" prompt over the page.
SETTINGS = {"notebook-extension/tracker": {"windowingMode": "none"},
            "apputils-extension/notification": {"fetchNews": "false"}}


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM, "chromium is installed by `make setup`"
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to start as root (CI runs the tests as root too).
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab from the venv on a free port, serving a copy of notebooks/ (JupyterLab and
    jupytext save what they open), with settings of its own; the URL of its tree."""
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp_path / "settings"
    for name, values in SETTINGS.items():
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token = secrets.token_hex(16)
    cmd = jupyterlab_command(root, token=token, settings_dir=settings)
    port = int(next(arg for arg in cmd if arg.startswith("--ServerApp.port=")).split("=")[1])
    with open(tmp_path / "jupyterlab.log", "wb") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _get(f"{url}/api/status?token={token}"), 120, "JupyterLab to answer")
        yield url, token
    finally:
        server.terminate()
        server.wait(timeout=60)


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.5)


def _menu(page: Page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


def _run_all_cells(page: Page) -> None:
    """Run > Run All Cells, until the kernel is seen busy: the menu item does nothing while the
    notebook panel is still settling after load (seen here: a click that ran no cell)."""
    page.locator(".jp-Notebook .jp-Cell").first.click()
    for _ in range(5):
        _menu(page, "Run", "Run All Cells")
        try:
            expect(page.locator(".jp-InputPrompt", has_text="[*]").first).to_be_attached(timeout=10_000)
            return
        except AssertionError:
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells never started the notebook's cells")


def _expect_or_show_outputs(page: Page, check, screenshot: Path) -> None:
    """Run an expectation; when it fails, say what the notebook's cells printed, and keep a screenshot."""
    try:
        check()
    except AssertionError as exc:
        outputs = [text[:300] for text in page.locator(".jp-OutputArea-output").all_inner_texts()]
        page.screenshot(path=screenshot, full_page=True)
        raise AssertionError(f"{str(exc).splitlines()[0]}; the cells' outputs: {outputs}; "
                             f"screenshot: {screenshot}") from None


def _dashboard_text(page: Page) -> str:
    return page.locator(".widget-output").last.inner_text()


@pytest.mark.lab
def test_live_dashboard_in_jupyterlab_refreshes_stops_and_leaves_no_vm(browser, jupyterlab, tmp_path):
    url, token = jupyterlab
    qemus_before = set(qemu_processes())
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"{url}/lab/tree/monitor.ipynb?token={token}")
    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=120_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(timeout=120_000)
    _run_all_cells(page)

    # The static cells: snapshots of the lab guest, taken with drgn, as text.
    _expect_or_show_outputs(page, lambda: expect(page.get_by_text(re.compile(r"^\d+ snapshots of \S+: \d+ workqueues")))
                            .to_be_visible(timeout=300_000), tmp_path / "static-cells.png")
    toggle = page.locator("button.widget-toggle-button")
    _expect_or_show_outputs(page, lambda: expect(toggle).to_have_text("Start", timeout=300_000),
                            tmp_path / "dashboard-cell.png")
    toggle.scroll_into_view_if_needed()
    status = page.locator("div.widget-label")
    expect(status).to_have_text("stopped: press Start", timeout=60_000)

    toggle.click()
    _expect_or_show_outputs(page, lambda: expect(status).to_have_text(re.compile(r"^snapshot ([2-9]|\d\d+) of "), timeout=120_000),
                            tmp_path / "dashboard.png")
    first = _dashboard_text(page)
    assert re.search(r"\bevents\b", first), f"the lab's workqueues are listed: {first[:300]}"
    images = page.locator(".widget-output img")
    expect(images).to_have_count(2)
    assert all(size[0] > 100 and size[1] > 100 for size in
               images.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])"))
    expect(status).to_have_text(re.compile(r"^snapshot ([4-9]|\d\d+) of "), timeout=120_000)
    assert _dashboard_text(page) != first, "the numbers changed as the guest ran"

    expect(toggle).to_have_text("Stop")
    toggle.click()
    expect(status).to_have_text(re.compile(r"^stopped after \d+ snapshots$"), timeout=60_000)

    _menu(page, "Kernel", "Shut Down Kernel")
    _wait_for(lambda: set(qemu_processes()) <= qemus_before, 120, "the kernel's lab VM to stop")
    page.close()


def test_report_shows_results_not_a_terminal(browser, tmp_path):
    html = make_report(NOTEBOOKS / "insert_exec.ipynb", {"data_dir": str(SOURCE_DIR / "data")}, tmp_path)
    page = browser.new_page()
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    assert page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0, \
        "no stderr block (progress bars, boot lines) in a shared report"
    images = page.locator("img").evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) >= 5
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)
    cells = [text.strip() for text in page.locator("table td").all_inner_texts()]
    numbers = [c for c in cells if re.fullmatch(r"-?[\d,.]+", c)]
    assert numbers, "the summary table is there"
    long_decimals = [c for c in numbers if re.search(r"\.\d{5,}", c)]
    assert not long_decimals, f"numbers read like results: {long_decimals[:3]}"
    assert str(SOURCE_DIR) not in page.content() and ".cache/wqkit" not in page.content(), \
        "no path of the machine that made it"
    page.close()
