"""Steady traffic beside the work a test does, and waiting for a condition."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

# A predicate that raises one of these is not there yet, as if it had returned a false value.
NOT_YET = (httpx.HTTPError, KeyError, subprocess.CalledProcessError)


def wait_for(
    predicate: Callable[[], Any],
    what: str,
    deadline_s: float = 180,
    interval_s: float = 1.0,
    describe: Callable[[], object] | None = None,
) -> Any:
    """``predicate()``'s first true value, tried every ``interval_s``; fails after ``deadline_s``
    naming ``what`` (and ``describe()``, the state worth reading then)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            value = predicate()
            if value:
                return value
        except NOT_YET:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f": {describe()}" if describe else ""))
        time.sleep(interval_s)


class Traffic:
    """Requests sent one after another from a thread until stopped, each ``calls[n % len]`` (a
    path and a model) with the question ``f"Traffic question {n % questions}?"``; every outcome
    counted."""

    def __init__(self, url: str, calls: Sequence[tuple[str, str]], questions: int | None = None) -> None:
        self.url = url
        self.calls = list(calls)
        self.questions = questions
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            n = 0
            while not self._stop.is_set():
                path, model = self.calls[n % len(self.calls)]
                question = n % self.questions if self.questions else n
                body = {"model": model, "messages": [{"role": "user", "content": f"Traffic question {question}?"}]}
                time.sleep(0.05)  # steady traffic, leaving the cores to the work it runs beside
                try:
                    response = client.post(path, json=body)
                    self.statuses.append(response.status_code)
                    if response.status_code != 200:
                        self.failures.append(response.text)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                n += 1
