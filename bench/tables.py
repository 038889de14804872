"""A bench's markdown table, printed and written under the command that printed it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def print_and_write(table: str, module: str, out: Path | None) -> None:
    print(table)
    if out:
        command = " ".join([f"python -m {module}", *sys.argv[1:]])
        out.write_text(f"### `{command}`\n\n" + table)
        print(f"wrote {out}")


def write_results(results: dict[str, Any], table: str, module: str, out: Path) -> None:
    """``results`` as ``out/results.json``; ``table`` printed and written as ``out/report.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print_and_write(table, module, out / "report.md")


def met_or_missed(value: float, bound: float, at_most: bool = True) -> str:
    """``met``, or ``missed by`` how many times, for the goal ``value`` ≤ ``bound`` (≥ when
    ``at_most`` is False)."""
    if value <= bound if at_most else value >= bound:
        return "met"
    factor = value / bound if at_most else bound / value if value else float("inf")
    return f"missed by {factor:.2f}×"
