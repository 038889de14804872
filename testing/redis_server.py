"""A real ``redis-server`` (Debian's package) on a free port of 127.0.0.1, as a child process
that a test can kill and start again on the same port; nothing written to disk."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from testing.cluster import free_port

START_DEADLINE_S = 10


class RedisServer:
    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """Gone at once, as a crashed server is (its pins with it)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def keys(self) -> list[str]:
        return sorted(k.decode() for k in redis.Redis(port=self.port).keys("*"))

    def stop(self) -> None:
        self.kill()
