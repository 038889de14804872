"""Who may call the service: API keys the ingress accepts as ``Authorization: Bearer <key>``.

Keys come from an environment variable (comma-separated) and/or a file with one key per line
(e.g. a mounted Kubernetes Secret; blank lines and ``#`` comments are skipped). They are read
by the ingress replica when it starts and are never logged, put in a config dump or a metric.
With no key configured the service is open.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from routing.config import AuthConfig
from routing.errors import Unauthorized


class ApiKeys:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode() for key in keys]

    @classmethod
    def load(cls, config: AuthConfig, env: Mapping[str, str]) -> ApiKeys:
        keys = []
        if config.api_keys_env:
            keys += [k.strip() for k in env.get(config.api_keys_env, "").split(",")]
        if config.api_keys_file:
            path = Path(config.api_keys_file)
            if not path.is_file():
                raise FileNotFoundError(f"auth.api_keys_file: no file {path}")
            keys += [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        keys = [k for k in keys if k and not k.startswith("#")]
        if not keys and (config.api_keys_env or config.api_keys_file):
            # Auth was asked for: starting open because a variable is unset would be a silent hole.
            where = " or ".join(f for f in (config.api_keys_env, config.api_keys_file) if f)
            raise ValueError(f"auth is configured but {where} holds no API key")
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> None:
        """Raises :class:`Unauthorized` unless the header carries a configured key."""
        if not self._keys:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
            )
        given = token.strip().encode()
        # Compared with every key, in constant time each, so the answer's timing tells nothing.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")
