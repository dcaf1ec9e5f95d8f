"""``voco up``/``voco local`` start-up: short-lived tokens, fresh at every connect,
and a clear refusal when the web UI was never built."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jwt
import pytest

from voco.auth import user_uuid
from voco.auth.tokens import TokenAuthority
from voco.local.launch import UP_TOKEN_TTL_S, LaunchError, embedded_token_source, require_web_ui
from voco.local.ui.relay import RuntimeConfig


def test_embedded_tokens_are_short_lived_and_fresh_per_connect() -> None:
    source = embedded_token_source()
    config = RuntimeConfig("ws://127.0.0.1:1/v1/session", source(), token_source=source)
    calls: list[str] = []

    def counting() -> str:
        calls.append(token := source())
        return token

    config.token_source = counting
    tokens = [config.fresh_token(), config.fresh_token()]
    assert calls == tokens  # issued at each connect, never a stored one
    authority = TokenAuthority()
    for token in tokens:
        assert asyncio.run(authority.verify(token)).user_id == user_uuid("local-user")
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == UP_TOKEN_TTL_S <= 3600  # an hour, not 30 days


def test_a_fixed_token_is_presented_as_given() -> None:
    assert RuntimeConfig("ws://x/v1/session", "tok").fresh_token() == "tok"


def test_no_web_ui_build_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="npm run build"):
        require_web_ui(tmp_path / "dist")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("<!doctype html>")
    assert require_web_ui(tmp_path / "dist") == tmp_path / "dist"
