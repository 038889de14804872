"""A bench's markdown table, printed and written under the command that printed it."""

from __future__ import annotations

import sys
from pathlib import Path


def print_and_write(table: str, module: str, out: Path | None) -> None:
    print(table)
    if out:
        command = " ".join([f"python -m {module}", *sys.argv[1:]])
        out.write_text(f"### `{command}`\n\n" + table)
        print(f"wrote {out}")
