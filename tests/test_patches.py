"""linux_patch_exp/: format-patch series that apply to Debian's 6.12 and 7.3 sources and pass checkpatch."""

import re
import subprocess

import pytest

from wqkit.lab.kernel_source import DEFAULT_SERIES, source_package, checkpatch, source_tarball
from wqkit.errors import WqkitError
from wqkit.lab.build import LAB_CONFIG, PATCH_DIR, apply_patch, patch_series, unmet_options

# Each series is applied to Debian's linux-source-SERIES, fetched once.
pytestmark = pytest.mark.network
#: The series linux_patch_exp/ is written for, and its port.
SERIES = [DEFAULT_SERIES, "7.3"]

SEED_NAMES = ["rdtsc.patch", "insert-exec-measurement-wq.patch", "workqueue_worker_measure_dying_bpf.patch"]


def touched_files(series: str) -> list[str]:
    """Every file the series changes, as paths in the source tree."""
    files = []
    for patch in patch_series(series):
        files += re.findall(r"^diff --git a/(\S+) b/", patch.read_text(), re.MULTILINE)
    return sorted(set(files))


@pytest.fixture(scope="module", params=SERIES)
def series(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, series):
    """A git repository of the touched files as Debian's source ships them (new files absent)."""
    root = tmp_path_factory.mktemp("src")
    members = [f"{source_package(series)}/{name}" for name in touched_files(series)]
    # One pass over the 150 MB tarball; the files the series creates are "not found" (exit 2).
    subprocess.run(["tar", "-xJf", str(source_tarball(series=series)), "-C", str(root), "--strip-components=1",
                    *members], capture_output=True)
    assert (root / "kernel" / "workqueue.c").is_file()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "pristine"], check=True)
    return root, git


def test_the_series_has_the_seeds_patches_in_order(series):
    assert [p.name for p in patch_series(series)] == SEED_NAMES
    for patch in patch_series(series):
        text = patch.read_text()
        # git format-patch output, with a real commit message and trailers.
        assert text.startswith("From ") and re.search(r"^Subject: \[PATCH \d/3\] workqueue: ", text, re.MULTILINE)
        message = text.split("\n\n", 1)[1].split("\n---\n", 1)[0]
        assert len(message.split()) > 80 and "Signed-off-by: " in message


def test_the_series_applies_with_git_am_and_with_patch(pristine, series, tmp_path):
    root, git = pristine
    subprocess.run([*git, "checkout", "-q", "-B", "am", "master"], check=True)
    proc = subprocess.run([*git, "am", "-q", *map(str, patch_series(series))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    log = subprocess.run([*git, "log", "--format=%s", "-3"], capture_output=True, text=True).stdout
    assert log.count("workqueue: ") == 3
    copy = tmp_path / "copy"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "-q", str(copy), "master"], check=True)
    for patch in patch_series(series):
        apply_patch(copy, patch)
    assert (copy / "include" / "linux" / "wq_measure.h").is_file()
    assert "trace_workqueue_worker_dying_end" in (copy / "kernel" / "workqueue.c").read_text()


def test_a_patch_that_does_not_apply_names_itself_and_its_hunk(pristine, series, tmp_path):
    root, _ = pristine
    broken = tmp_path / "broken.patch"
    broken.write_text(patch_series(series)[1].read_text().replace("	/* claim and dequeue */", "	/* no such line */"))
    work = tmp_path / "tree"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "-q", "--detach", str(work), "master"], check=True)
    apply_patch(work, patch_series(series)[0])
    with pytest.raises(Exception, match=r"broken.patch does not apply: Hunk #\d+ FAILED"):
        apply_patch(work, broken)


def test_the_series_passes_checkpatch_strict(series):
    proc = subprocess.run(["perl", str(checkpatch()), "--strict", "--terse", "--no-tree",
                           *map(str, patch_series(series))],
                          capture_output=True, text=True)
    errors = [line for line in proc.stdout.splitlines() if "ERROR:" in line]
    assert errors == [] and "total: 0 errors" in proc.stdout


def test_config_check_names_what_olddefconfig_dropped():
    config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n"
    fragment = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=y\n# a comment\n"
    assert unmet_options(config, fragment) == ["CONFIG_C=y", "CONFIG_D=y"]
    assert "CONFIG_WQ_MEASURE" not in LAB_CONFIG.read_text(), "the option is the patched variant's only"
    assert (PATCH_DIR / "series").is_file()


def test_a_series_without_a_port_is_a_one_line_error():
    with pytest.raises(WqkitError, match=r"linux_patch_exp/ has no port to 6\.1: there is no patched 6\.1 kernel"):
        patch_series("6.1")
