"""The top-level Makefile builds every module by the seed's target names."""

import subprocess

from wqkit.runs.spec import modules
from wqkit.paths import SOURCE_DIR


def module_names() -> list[str]:
    return [name for name, spec in modules().items() if not spec.external]


def test_every_module_has_a_top_level_target():
    names = module_names()
    assert "wq_kserver" in names
    for name in names:
        proc = subprocess.run(["make", "-n", "-C", str(SOURCE_DIR), name.replace("_", "-"), "KDIR=/nonexistent"],
                              capture_output=True, text=True)
        assert f'WQKIT_MODULES="{name}"' in proc.stdout, (name, proc.stderr)
