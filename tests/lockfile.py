"""The lock files (requirements/*.txt): their pins, and what an environment has that differs.
``python tests/lockfile.py`` prints the releases installed here that differ from the dev lock
(the canary's report)."""

from __future__ import annotations

import re
from collections import defaultdict
from importlib.metadata import distributions
from pathlib import Path

from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.M)


def pins(lock: Path) -> dict[str, set[str]]:
    """Each locked package's versions (more than one where a marker splits them by platform)."""
    pinned: dict[str, set[str]] = defaultdict(set)
    for name, version in _PIN.findall(lock.read_text()):
        pinned[canonicalize_name(name)].add(version)
    return dict(pinned)


def drift(lock: Path = REQUIREMENTS / "dev.txt") -> list[str]:
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    return [
        f"{name} {'/'.join(sorted(versions))} -> {installed[name]}"
        for name, versions in sorted(pins(lock).items())
        if name in installed and installed[name] not in versions
    ]


if __name__ == "__main__":
    print("newer than the lock:", ", ".join(drift()) or "nothing")
