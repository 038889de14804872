"""The documentation site builds with every link and anchor resolved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testing import ROOT


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    result = subprocess.run(mkdocs, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
