"""A report as a reader sees it: opened in a real browser (Debian's headless Chromium)."""

import json
import re
import shutil
import subprocess

from wqkit.paths import SOURCE_DIR
from wqkit.report import make_report

DATA = SOURCE_DIR / "data"
CHROMIUM = shutil.which("chromium")

# Runs in the page once it has loaded, and leaves its findings in the DOM that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]);
  const stderr = document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').length;
  const cells = [...document.querySelectorAll("table td")].map(td => td.textContent.trim());
  const probe = document.createElement("pre");
  probe.id = "wqkit-probe";
  probe.textContent = JSON.stringify({images, stderr, cells});
  document.body.appendChild(probe);
});
</script>"""


def open_in_browser(page, tmp_path) -> dict:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="wqkit-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the probe did not run: {proc.stderr[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_report_shows_results_not_a_terminal(tmp_path):
    assert CHROMIUM, "chromium is installed by `make setup`"
    page = make_report(SOURCE_DIR / "notebooks" / "insert_exec.ipynb", {"data_dir": str(DATA)}, tmp_path)
    seen = open_in_browser(page, tmp_path)
    assert seen["stderr"] == 0, "no stderr block (progress bars, boot lines) in a shared report"
    assert len(seen["images"]) >= 5
    assert all(complete and width > 0 and height > 0 for complete, width, height in seen["images"])
    numbers = [c for c in seen["cells"] if re.fullmatch(r"-?[\d,.]+", c)]
    assert numbers, "the summary table is there"
    long_decimals = [c for c in numbers if re.search(r"\.\d{5,}", c)]
    assert not long_decimals, f"numbers read like results: {long_decimals[:3]}"
    html = page.read_text()
    assert str(SOURCE_DIR) not in html and ".cache/wqkit" not in html, "no path of the machine that made it"
