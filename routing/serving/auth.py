"""Who may call the service: API keys the ingress accepts as ``Authorization: Bearer <key>``.

Keys come from an environment variable (comma-separated) and/or a file with one key per line
(e.g. a mounted Kubernetes Secret; blank lines and ``#`` comments are skipped). Each entry is a
key, or a name and its key (``team-a sk-...``): the name is what the request log, the metrics and
the savings report call the key's traffic (an unnamed key is ``key-<digest>``). Keys are read by
the ingress replica when it starts and are never logged, put in a config dump or a metric.
With no key configured the service is open. A key this repository has published (a template's
placeholder) is never accepted, and keeps the service from answering ready until it is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

from routing.config import AuthConfig
from routing.errors import Unauthorized

# Placeholders this repository's manifests and docs have published: anyone may know them.
PUBLISHED_KEYS = frozenset({"replace-with-a-client-key", "replace-with-the-strong-model-api-key", "sk-..."})


class ApiKeys:
    def __init__(self, keys: list[str], published_in: list[str] | None = None) -> None:
        """``keys``: entries as configured, each a key or ``<name> <key>``."""
        named = [named_key(entry) for entry in keys]
        self._keys = [(name, key.encode()) for name, key in named]
        self.published_in = published_in or []

    @classmethod
    def load(cls, config: AuthConfig, env: Mapping[str, str]) -> ApiKeys:
        found: list[tuple[str, str]] = []  # (where it was read, key)
        if config.api_keys_env:
            where = f"auth.api_keys_env ({config.api_keys_env})"
            found += [(where, k.strip()) for k in env.get(config.api_keys_env, "").split(",")]
        if config.api_keys_file:
            path = Path(config.api_keys_file)
            if not path.is_file():
                raise FileNotFoundError(f"auth.api_keys_file: no file {path}")
            where = f"auth.api_keys_file ({path})"
            found += [(where, line.strip()) for line in path.read_text(encoding="utf-8").splitlines()]
        found = [(where, k) for where, k in found if k and not k.startswith("#")]
        if not found and (config.api_keys_env or config.api_keys_file):
            # Auth was asked for: starting open because a variable is unset would be a silent hole.
            where = " or ".join(f for f in (config.api_keys_env, config.api_keys_file) if f)
            raise ValueError(f"auth is configured but {where} holds no API key")
        published = sorted({where for where, entry in found if named_key(entry)[1] in PUBLISHED_KEYS})
        return cls([entry for _, entry in found], published)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @property
    def problem(self) -> str | None:
        """Why the service must not answer ready: a source holds a published placeholder."""
        if not self.published_in:
            return None
        return (
            f"{' and '.join(self.published_in)} holds a key published in routellm-serve's repository, "
            "which anyone may know and which is refused: replace it with a key of your own"
        )

    def check(self, authorization: str | None, api_key: str | None = None) -> str | None:
        """The name of the configured key the ``Authorization`` header's bearer token, or else the
        ``x-api-key`` header (as Anthropic's clients send it), holds (None: the service is open);
        raises :class:`Unauthorized` when it holds none."""
        if not self._keys:
            return None
        token = bearer_key(authorization) or (api_key or "").strip()
        if not token:
            raise Unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>').",
                code="missing_api_key",
            )
        given = token.encode()
        # Compared with every key, in constant time each, so the answer's timing tells nothing.
        matched = None
        for name, key in self._keys:
            if hmac.compare_digest(given, key):
                matched = name
        if matched is None:
            raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")
        if given.decode(errors="replace") in PUBLISHED_KEYS:
            raise Unauthorized(
                "This API key is published and refused; the service needs a key of its own.", code="invalid_api_key"
            )
        return matched


def named_key(entry: str) -> tuple[str, str]:
    """A configured entry as (name, key): ``<name> <key>``, or a bare key named by its digest."""
    name, _, key = entry.strip().rpartition(" ")
    if name.strip():
        return name.strip(), key
    return f"key-{hashlib.sha256(key.encode()).hexdigest()[:8]}", key


def bearer_key(authorization: str | None) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` header, if it holds one."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
