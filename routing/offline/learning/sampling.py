"""Which logged prompts a round labels.

Active sampling spends a share of the round on the prompts whose logged score lies nearest the
operating threshold, where a label is most likely to change a decision; the rest of the round is
drawn uniformly from the other prompts. A fixed random share of all prompts (by a hash) forms the
test slice, which only the uniform draw takes from: the slice stays a uniform sample of the
traffic, and its APGR an unbiased estimate; prompts chosen for being near the threshold train.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routing.learner_config import Sampling
from routing.offline.labelling.run import Prompt, distinct_prompts
from routing.offline.learning.store import Sampled
from routing.serving.request_log import FILE_PATTERNS, RequestRecord, read_request_log


@dataclass(frozen=True)
class Logged:
    """A distinct prompt the router routed, with its latest logged score and threshold."""

    prompt: Prompt
    score: float | None
    threshold: float | None


def routed_prompts(records: Iterable[RequestRecord], router: str) -> list[Logged]:
    """The routed turn (the last user message) of each of ``router``'s logged requests, one per
    distinct prompt, in first-seen order."""
    latest: dict[str, Logged] = {}
    for record in records:
        if record.router != router or not record.messages:
            continue
        turns = [m.content for m in record.messages if m.role == "user"]
        if not turns or not turns[-1].strip():
            continue
        (prompt,) = distinct_prompts([turns[-1]])
        latest[prompt.id] = Logged(prompt, record.score, record.threshold)
    return list(latest.values())


def choose(
    candidates: Sequence[Logged],
    count: int,
    sampling: Sampling,
    active_share: float,
    test_fraction: float,
    round_number: int,
) -> list[Sampled]:
    """``count`` prompts of ``candidates`` for round ``round_number``, each with its split."""
    rng = np.random.default_rng(round_number)
    chosen: list[Sampled] = []
    remaining = list(candidates)
    if sampling == "active":
        # Never a prompt of the test slice: the slice stays a uniform sample of the traffic.
        near = [
            c
            for c in remaining
            if c.score is not None and c.threshold is not None and not in_test_slice(c.prompt, test_fraction)
        ]
        ties = rng.permutation(len(near))  # equally near prompts are taken in random order
        near = [c for _, _, c in sorted(zip([abs(c.score - c.threshold) for c in near], ties, near, strict=True))]  # type: ignore[operator]
        for logged in near[: int(round(active_share * count))]:
            chosen.append(_sampled(logged.prompt, round_number, "train", "active"))
        taken = {s.prompt_id for s in chosen}
        remaining = [c for c in remaining if c.prompt.id not in taken]
    order = rng.permutation(len(remaining))
    for index in order[: count - len(chosen)]:
        prompt = remaining[index].prompt
        test = in_test_slice(prompt, test_fraction)
        chosen.append(
            _sampled(prompt, round_number, "test" if test else "train", "uniform-test" if test else "uniform")
        )
    return chosen


def drawn_uniformly(sampled: Iterable[Sampled], prompts: Sequence[str]) -> np.ndarray:
    """Which of ``prompts`` (training labels) a round drew uniformly from the traffic: the others
    are a biased sample of it (active sampling's picks lie near the operating threshold, and
    shadow verdicts come only from requests a cheaper candidate answered)."""
    uniform = {s.text for s in sampled if s.reason == "uniform"}
    return np.array([p in uniform for p in prompts], bool)


def in_test_slice(prompt: Prompt, fraction: float) -> bool:
    """Whether a prompt belongs to the test slice: by a hash of its id of its own, so that the
    slice is a random share of the traffic, independent of its scores and of anything else keyed
    by the id. Only a uniform draw takes such a prompt, so the test slice is a uniform sample."""
    digest = hashlib.sha256(f"test-slice:{prompt.id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _sampled(prompt: Prompt, round_number: int, split: str, reason: str) -> Sampled:
    return Sampled(prompt_id=prompt.id, text=prompt.text, round=round_number, split=split, reason=reason)  # type: ignore[arg-type]


class LogCounter:
    """How many requests a router has routed, by the request log, counted incrementally: only
    what was appended since the last count is read."""

    def __init__(self, directory: str | Path, router: str) -> None:
        self.directory = Path(directory)
        self.router = router
        self._seen: dict[Path, tuple[int, int]] = {}  # file -> (bytes counted, the router's records in them)

    def count(self) -> int:
        total = 0
        for pattern in FILE_PATTERNS:
            for path in self.directory.glob(pattern):
                total += self._count(path)
        return total

    def _count(self, path: Path) -> int:
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # a segment converted and removed since the listing
            return 0
        offset, records = self._seen.get(path, (0, 0))
        if size == offset:
            return records
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            routers = pq.read_table(path, columns=["router"]).column("router").to_pylist()
            records, offset = routers.count(self.router), size
        else:
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            whole = chunk.rfind(b"\n") + 1  # a line still being written is counted once it ends
            records += sum(self._routed(line) for line in chunk[:whole].splitlines())
            offset += whole
        self._seen[path] = (offset, records)
        return records

    def _routed(self, line: bytes) -> bool:
        try:
            return json.loads(line).get("router") == self.router
        except (ValueError, AttributeError):
            return False


def recent_prompts(directory: str | Path, router: str, limit: int) -> list[str]:
    """The ``limit`` most recent distinct prompts ``router`` routed."""
    logged = routed_prompts(read_request_log(directory), router)
    return [entry.prompt.text for entry in logged[-limit:]]
