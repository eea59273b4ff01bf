"""The layers point down (lab → targets → inspect → runs → experiments → trace → study → analysis →
front ends):
import-linter checks the contracts of pyproject.toml, as CI does on every `make test`."""

import subprocess
import sys
from pathlib import Path

from wqkit.paths import SOURCE_DIR


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-cache", str(SOURCE_DIR / "pyproject.toml")], cwd=SOURCE_DIR,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in proc.stdout
