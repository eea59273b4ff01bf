"""Kernel C follows kernel coding style: checkpatch.pl of the 6.12 tree finds no error."""

import pytest

from wqkit.runs import cgen, spec
from wqkit.experiments.scaffold import new_experiment
from wqkit.lab.kernel_source import run_checkpatch
from wqkit.paths import MODULES_DIR, SOURCE_DIR


# checkpatch.pl comes from Debian's linux-source-6.12, fetched once.
pytestmark = pytest.mark.network


def test_modules_and_patches_pass_checkpatch(tmp_path):
    """The modules, the headers generated from their declarations, the skeleton of
    `wqkit new-experiment` and its header, the patches, the lab guest's init, and the bcc engine's
    programs and their loader."""
    home = new_experiment("style_probe", tmp_path)
    specs = [*spec.modules().values(), spec.read_spec(home / "style_probe.toml")]
    cgen.write(home, specs)
    files = sorted(MODULES_DIR.glob("*.[ch]")) + sorted(home.glob("*.[ch]")) \
        + sorted((SOURCE_DIR / "linux_patch_exp").glob("*.patch")) + [SOURCE_DIR / "wqkit" / "lab" / "guest_init.c"] \
        + sorted((SOURCE_DIR / "wqkit" / "trace" / "bcc").glob("*.[ch]"))
    assert home / "style_probe_params.h" in files and home / "kserver_params.h" in files
    assert files
    result = run_checkpatch(files)
    errors = [line for line in result.stdout.splitlines() if ": ERROR:" in line]
    assert errors == [], "\n".join(errors)
