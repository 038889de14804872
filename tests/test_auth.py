"""API keys: where they come from and how a request's header is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.config import AuthConfig
from routing.errors import Unauthorized
from routing.serving.auth import ApiKeys


def test_keys_from_a_variable_and_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("# team keys\nsk-file-1\n\n  sk-file-2  \n")
    keys = ApiKeys.load(AuthConfig(api_keys_env="KEYS", api_keys_file=str(secret)), {"KEYS": "sk-env-1, sk-env-2"})
    assert keys.enabled
    for key in ("sk-env-1", "sk-env-2", "sk-file-1", "sk-file-2"):
        keys.check(f"Bearer {key}")
    keys.check("bearer sk-env-1")


@pytest.mark.parametrize(
    ("header", "code"),
    [(None, "missing_api_key"), ("", "missing_api_key"), ("Basic sk-env-1", "missing_api_key"),
     ("Bearer ", "missing_api_key"), ("Bearer sk-env-3", "invalid_api_key"), ("Bearer sk-env-1x", "invalid_api_key"),
     ("Bearer # team keys", "invalid_api_key")],
)  # fmt: skip
def test_missing_or_wrong_keys_are_401(header: str | None, code: str) -> None:
    keys = ApiKeys.load(AuthConfig(api_keys_env="KEYS"), {"KEYS": "sk-env-1,sk-env-2"})
    with pytest.raises(Unauthorized) as info:
        keys.check(header)
    assert info.value.status_code == 401 and info.value.code == code
    assert "sk-env-1" not in info.value.message and "sk-env-2" not in info.value.message


def test_no_keys_configured_means_open_but_configured_and_empty_is_an_error(tmp_path: Path) -> None:
    ApiKeys.load(AuthConfig(), {}).check(None)
    with pytest.raises(ValueError, match="KEYS holds no API key"):
        ApiKeys.load(AuthConfig(api_keys_env="KEYS"), {"KEYS": " , "})
    with pytest.raises(FileNotFoundError, match="api_keys_file"):
        ApiKeys.load(AuthConfig(api_keys_file=str(tmp_path / "absent")), {})


def test_a_published_key_is_refused_and_named_by_its_source() -> None:
    keys = ApiKeys.load(AuthConfig(api_keys_env="KEYS"), {"KEYS": "sk-mine, replace-with-a-client-key"})
    assert keys.enabled and keys.problem is not None and "auth.api_keys_env (KEYS)" in keys.problem
    assert "replace-with-a-client-key" not in keys.problem
    keys.check("Bearer sk-mine")
    with pytest.raises(Unauthorized) as info:
        keys.check("Bearer replace-with-a-client-key")
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert ApiKeys.load(AuthConfig(api_keys_env="KEYS"), {"KEYS": "sk-mine"}).problem is None
