"""The ``routellm-serve`` commands as library functions, one module each: ``build_data``,
``build_eval``, ``build_pool``, ``train``, ``evaluate``, ``calibrate`` and ``label``.

Each takes typed arguments, reports progress through ``echo`` (the command's output) and ``log``
(its diagnostics), raises ``ValueError`` for bad data or options (naming the file, row or
option), and returns what it made. :mod:`routing.offline.cli` only parses arguments and calls them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Echo = Callable[[str], None]


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr)
