"""The code's layering, as import-linter checks it against the contracts in pyproject.toml: the
core in ``routing`` imports neither Ray nor the Serve shells; no modules import in a circle; the
offline code sits above the serving core, which sits above the model layer; and the modules all
of them share import neither layer above the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testing import ROOT


def test_the_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout
