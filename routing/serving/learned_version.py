"""A router's learned version as its Router replicas receive it from the learner.

The learner's state directory is its own (a volume on one pod, on Kubernetes): a Router replica
never reads it. The version in service travels through Serve instead, with its checkpoint's files,
and each replica writes them to a directory of its own before loading them. Version 0 is the
checkpoint the application configures, which every replica already has: it travels without files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

MAX_CHECKPOINT_BYTES = 2 * 1024**3  # past this, a version is refused rather than sent to every replica


class LearnedVersion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    router: str
    version: int = Field(ge=0)
    since: float = Field(description="when it took over (0: the configured checkpoint, from the start)")
    by: str = Field(description="promotion, manual promotion or rollback")
    files: dict[str, bytes] = Field(
        default_factory=dict, description="the checkpoint's files by relative path (none for version 0)"
    )

    @property
    def tag(self) -> str:
        """Tells one change of version from another, a version put back in service included."""
        return f"{self.version}@{self.since}"

    @classmethod
    def of_directory(cls, router: str, version: int, since: float, by: str, directory: Path | None) -> LearnedVersion:
        """``directory``: the version's checkpoint (None for version 0). Raises :class:`ValueError`
        when it is missing or too large to send."""
        if directory is None:
            return cls(router=router, version=version, since=since, by=by)
        if not directory.is_dir():
            raise ValueError(f"version {version} of router '{router}': no checkpoint at {directory}")
        paths = sorted(p for p in directory.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in paths)
        if size > MAX_CHECKPOINT_BYTES:
            raise ValueError(f"version {version} of router '{router}': {size} bytes, over {MAX_CHECKPOINT_BYTES}")
        files = {p.relative_to(directory).as_posix(): p.read_bytes() for p in paths}
        return cls(router=router, version=version, since=since, by=by, files=files)

    def unpacked(self, root: Path) -> Path:
        """Writes the files to a new directory under ``root`` named by the version number (so
        that every replica names it alike in its answers) and returns it."""
        root.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(dir=root)) / str(self.version)
        for relative, content in self.files.items():
            path = (target / relative).resolve()
            if not path.is_relative_to(target.resolve()):
                raise ValueError(f"version {self.version} of router '{self.router}': file {relative!r} leaves it")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        target.mkdir(parents=True, exist_ok=True)
        return target
