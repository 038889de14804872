from __future__ import annotations

from conftest import ROOT

from deployments.serve_env import shell_prefix


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command.endswith("pytest") and f"    {command}\n" in readme
    assert f"export {shell_prefix()} && serve run serve_config.yaml" in readme.split("## Try it")[0]


def test_code_passes_the_linter_and_formatter() -> None:
    import subprocess
    import sys

    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
