"""Kernel C follows kernel coding style: checkpatch.pl of the 6.12 tree finds no error."""

import pytest

from wqkit.lab.kernel_source import run_checkpatch
from wqkit.paths import MODULES_DIR, SOURCE_DIR


# checkpatch.pl comes from Debian's linux-source-6.12, fetched once.
pytestmark = pytest.mark.network


def test_modules_and_patches_pass_checkpatch():
    files = sorted(MODULES_DIR.glob("*.[ch]")) + sorted((SOURCE_DIR / "linux_patch_exp").glob("*.patch"))
    assert files
    result = run_checkpatch(files)
    errors = [line for line in result.stdout.splitlines() if ": ERROR:" in line]
    assert errors == [], "\n".join(errors)
