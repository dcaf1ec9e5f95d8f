"""The page's engine-reconnecting banner in Chromium, behind the real relay.

What the page is told (``runtime.status`` "reconnecting" with ``attempt`` and
``retry_in_ms``, then "connected"; "disconnected" after a final refusal) comes
from the real ``/ui`` relay on ``ResumingSession``; the engines are real
(``EngineServer``, whose exit is the SIGTERM drain) on one port over one
thread store, as engines behind a balancer share Postgres. Every wait is on a
DOM or ``window.__voco`` condition; nothing sleeps to prove an absence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes import ScriptedLLM
from tests.local.ui.test_relay_engine_restart import Store, engine
from tests.web import test_ui_e2e as e2e
from tests.web.test_ui_e2e import browser, hook, open_page, shot, wait_hook
from voco.audio.vad import SileroVAD
from voco.auth.tokens import TokenAuthority
from voco.local.launch import serve_ui
from voco.serving import free_port

# the shared harness's fixtures and skips (Chromium, bubblewrap)
pytestmark = [*e2e.pytestmark, pytest.mark.timeout(240)]
built_ui = e2e.built_ui
project = e2e.project


async def _turn(page: Any, text: str) -> None:
    box = page.get_by_test_id("text-input")
    await box.fill(text)
    await box.press("Enter")
    await page.locator("[data-testid=reply]", has_text=f"You said: {text}").wait_for(timeout=30_000)


async def test_the_banner_shows_while_the_engine_is_away_and_reconnect_works_after_a_refusal(
    project: Path, silero: SileroVAD, whisper: Any, piper: Any, tmp_path: Path
) -> None:
    port, store = free_port(), Store()
    url = f"ws://127.0.0.1:{port}/v1/session"
    models = (silero, whisper, piper)
    reconnecting = None
    async with (
        browser(None, scheme="dark", height=700) as page,
        serve_ui(url, lambda: store.auth.issue("alice"), [project], "deny") as ui,
    ):
        async with engine(port, store, ScriptedLLM(), *models, drain_s=0.5):
            await open_page(page, ui)
            thread = await hook(page, "v.threadId")
            await _turn(page, "where am I")
            reconnecting = page.get_by_test_id("banner-engine-reconnecting")
            assert await reconnecting.count() == 0
        # drained: going away (1012); the relay retries and says so
        await reconnecting.wait_for(timeout=20_000)
        assert await hook(page, "v.engine") == "reconnecting"
        text = await reconnecting.inner_text()
        assert "resuming this conversation" in text and "attempt" in text
        await shot(page, "engine-reconnecting-dark")

        async with engine(port, store, ScriptedLLM(), *models, drain_s=0.5):
            await reconnecting.wait_for(state="hidden", timeout=60_000)
            await wait_hook(page, "v.engine === 'connected'", 20)
            assert await hook(page, "v.threadId") == thread  # the same thread resumed
            await _turn(page, "and now")

        # an engine that cannot accept this runtime's tokens (another signing
        # key): 4401 is final, the relay stops retrying, the page offers Reconnect
        stranger = Store()
        stranger.saver, stranger.tenants = store.saver, store.tenants
        stranger.auth = TokenAuthority(tmp_path / "another-signing.key")
        refused = page.get_by_test_id("banner-engine")
        async with engine(port, stranger, ScriptedLLM(), *models, drain_s=0.5):
            await refused.wait_for(timeout=60_000)
            assert await hook(page, "v.engine") == "disconnected"
            assert await reconnecting.count() == 0
            await shot(page, "engine-refused-dark")

        # the right engine is back; only the page's Reconnect brings the relay to it
        async with engine(port, store, ScriptedLLM(), *models, drain_s=0.5):
            await refused.get_by_role("button", name="Reconnect").click()
            await refused.wait_for(state="hidden", timeout=30_000)
            await wait_hook(page, "v.engine === 'connected'", 20)
            assert await hook(page, "v.threadId") == thread
            await _turn(page, "still here")
            assert await page.get_by_test_id("banner-engine").count() == 0
            assert await reconnecting.count() == 0
