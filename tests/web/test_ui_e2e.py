"""The web UI end to end, in a real browser (Debian's Chromium, driven by Playwright).

A spoken WAV is the browser's microphone (Chromium's fake capture device); it goes
through the page's AudioWorklet (resample to 16 kHz, PCM frames), the real local
runtime (UI server, relay, sandbox) and the real engine (VAD, Whisper, command
mode, Piper). Reply audio is checked where a person hears it: the playback
worklet's own level and played-time counters, read through ``window.__voco``.

Screenshots of the main states go to ``tests/.artifacts/`` (dark and light).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.speech import piper_speech, silence, write_wav
from voco.local.launch import serve_ui

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST = WEB / "dist"
ARTIFACTS = ROOT / "tests" / ".artifacts"
CHROMIUM = os.environ.get("VOCO_CHROMIUM", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap missing (sandbox)"),
]


# ------------------------------------------------------------------ fixtures


def _stale() -> bool:
    index = DIST / "index.html"
    if not index.is_file():
        return True
    sources = [WEB / "index.html", WEB / "package-lock.json", *(WEB / "src").rglob("*")]
    return max(p.stat().st_mtime for p in sources if p.is_file()) > index.stat().st_mtime


@pytest.fixture(scope="module", autouse=True)
def built_ui() -> Path:
    """The page as the runtime serves it: (re)build it if its sources are newer."""
    if _stale():
        npm = shutil.which("npm")
        if npm is None or not (WEB / "node_modules").is_dir():
            pytest.fail("web UI not built: run `cd web && npm ci && npm run build`")
        subprocess.run([npm, "run", "build"], cwd=WEB, check=True, capture_output=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return DIST


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("# Demo\n")
    (root / "src" / "main.py").write_text("print('hello')\n")
    (root / "Makefile").write_text("test:\n\t@echo '3 passed, 0 failed'\n")
    return root


@contextlib.asynccontextmanager
async def stack(
    engine_factory: Any,
    roots: list[Path],
    approve: str = "ask",
    port: int = 0,
    **launch: Any,
) -> AsyncIterator[Any]:
    """Engine (embedded models, command mode) + local runtime + UI server
    (``launch``: :func:`serve_ui`'s seams, ``secret`` and ``encoding``)."""
    async with (
        engine_factory() as eng,
        serve_ui(eng.url, eng.token(), roots, approve, port=port, **launch) as ui,
    ):
        yield ui


@contextlib.asynccontextmanager
async def browser(
    wav: Path | None, *, scheme: str = "dark", width: int = 1280, height: int = 800
) -> AsyncIterator[Any]:
    """A fresh Chromium whose microphone plays ``wav`` once."""
    from playwright.async_api import async_playwright

    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    with tempfile.TemporaryDirectory(prefix="voco-chromium-") as profile:
        async with async_playwright() as pw:
            ctx = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=args,
                viewport={"width": width, "height": height},
                color_scheme=scheme,  # type: ignore[arg-type]
            )
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                yield page
            finally:
                await ctx.close()
            assert not errors, f"errors in the page: {errors}"


def speech_wav(path: Path, *parts: np.ndarray) -> Path:
    """The microphone's input for Chromium's fake capture device: a mono 16-bit WAV.
    16 kHz and 48 kHz files both work (Chromium resamples them to the fake
    device's 44.1 kHz, so the page's resampler runs a non-integer ratio)."""
    return write_wav(path, np.concatenate(parts))


async def hook(page: Any, expr: str) -> Any:
    return await page.evaluate(f"() => {{ const v = window.__voco; return {expr}; }}")


async def wait_hook(page: Any, cond: str, timeout_s: float) -> None:
    await page.wait_for_function(
        f"() => {{ const v = window.__voco; return !!v && ({cond}); }}",
        timeout=timeout_s * 1000,
        polling=50,
    )


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def open_page(page: Any, ui: Any, extra: str = "&rawmic=1") -> None:
    await page.goto(ui.url + extra)
    await wait_hook(
        page, "v.connection === 'open' && v.engine === 'connected' && v.micState === 'on'", 15
    )
    assert "secret" not in page.url  # taken out of the address bar


# --------------------------------------------------------------------- tests


@pytest.mark.timeout(60)
async def test_spoken_question_gets_a_spoken_reply(engine_factory, project, tmp_path):
    wav = speech_wav(
        tmp_path / "q.wav", silence(2000), piper_speech("List the files."), silence(9000)
    )
    async with stack(engine_factory, [project]) as ui, browser(wav, scheme="dark") as page:
        await open_page(page, ui)
        settings = await hook(page, "v.micSettings")
        assert settings["echoCancellation"] is False  # rawmic=1: tests hear the file as is
        await shot(page, "idle-dark")

        await page.get_by_test_id("user-text").first.wait_for(timeout=20_000)
        said = (await page.get_by_test_id("user-text").first.inner_text()).lower()
        assert "files" in said
        await page.get_by_test_id("reply").first.wait_for(timeout=15_000)
        # The reply is heard: the playback worklet renders real signal.
        await wait_hook(page, "v.state === 'speaking' && v.outputLevel > 0.02", 15)
        await shot(page, "speaking-dark")
        await wait_hook(page, "v.played.some(p => p.why === 'ended')", 20)
        reply = (await page.get_by_test_id("reply").first.inner_text()).lower()
        assert "main" in reply or "readme" in reply or "src" in reply
        r = (await hook(page, "v.responses"))[-1]
        assert r["decoder"] == "webcodecs" and r["encoding"] == "mp3"
        assert r["peakLevel"] > 0.05
        assert r["playedMs"] > 1000 and abs(r["playedMs"] - r["decodedMs"]) < 100
        assert not r["halted"] and r["droppedBytes"] == 0
        played = await hook(page, "v.played")
        assert played[-1]["rid"] == r["id"] and played[-1]["playedMs"] == r["playedMs"]
        sent = await hook(page, "v.messages.filter(m => m.dir === 'out').map(m => m.type)")
        assert "audio.played" in sent
        assert await hook(page, "v.framesSent") > 100  # 32 ms frames from the worklet
        assert await hook(page, "v.inputPeak") > 0.01  # the page heard the question
        await page.get_by_test_id("turn-metrics").first.wait_for(timeout=5000)
        await wait_hook(page, "v.outputLevel < 0.001 && v.state === 'listening'", 5)
        await shot(page, "reply-dark")


@pytest.mark.timeout(60)
async def test_talking_over_the_reply_halts_it(engine_factory, project, tmp_path):
    wav = speech_wav(
        tmp_path / "barge.wav",
        silence(2000),
        piper_speech("What can you do?"),
        silence(3500),
        piper_speech("Wait, stop."),
        silence(6000),
    )
    async with stack(engine_factory, [project]) as ui, browser(wav, scheme="light") as page:
        await open_page(page, ui)
        await wait_hook(page, "v.state === 'speaking' && v.outputLevel > 0.02", 25)
        await wait_hook(page, "v.halts >= 1", 15)
        halt = (await hook(page, "v.haltEvents"))[0]
        r = next(x for x in await hook(page, "v.responses") if x["id"] == halt["rid"])
        assert r["halted"]
        # Cut part-way: the help reply is ~10 s long; the engine paces audio ≤ 300 ms ahead.
        # (How much had played depends on when the reply started — later on a
        # loaded machine — so only "some, not all" is asserted.)
        assert 0 < halt["playedMs"] <= r["decodedMs"] and halt["playedMs"] < 8000
        # Playback stops at once: the level falls and nothing more of it plays.
        await page.wait_for_timeout(250)
        assert await hook(page, "v.outputLevel") < 0.005
        played_then = r["playedMs"]
        await page.wait_for_timeout(700)
        r2 = next(x for x in await hook(page, "v.responses") if x["id"] == halt["rid"])
        assert r2["playedMs"] == played_then
        played = await hook(page, "v.played")
        assert any(p["rid"] == halt["rid"] and p["why"] == "halted" for p in played)
        # The reply is shown cut, at what was heard.
        cut = page.locator(f'[data-testid=reply][data-response-id="{halt["rid"]}"]')
        await cut.and_(page.locator("[data-interrupted=true]")).wait_for(timeout=5000)
        assert (await cut.get_by_test_id("unheard").inner_text()).strip()  # shown struck out
        await shot(page, "interrupted-light")


@pytest.mark.timeout(60)
async def test_fallback_decoder_stop_button_and_push_to_talk(engine_factory, project, tmp_path):
    """Without WebCodecs the MP3 frames are decoded by decodeAudioData in batches;
    the stop button silences a reply at once; push-to-talk streams only while held."""
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with (
        stack(engine_factory, [project]) as ui,
        browser(quiet, scheme="dark", width=760, height=900) as page,
    ):
        await open_page(page, ui, "&rawmic=1&decoder=fallback&mode=ptt")
        box = page.get_by_test_id("text-input")
        await box.fill("where am I")
        await box.press("Enter")
        await page.get_by_test_id("user-text").first.wait_for(timeout=10_000)
        await wait_hook(page, "v.played.some(p => p.why === 'ended')", 20)
        r = (await hook(page, "v.responses"))[-1]
        assert r["decoder"] == "decodeAudioData"
        assert r["peakLevel"] > 0.05 and r["playedMs"] > 800
        assert await hook(page, "v.framesSent") == 0  # push-to-talk, not held: nothing sent

        # The stop button: playback stops here at once, the engine is told.
        await wait_hook(page, "v.state === 'listening'", 10)
        await box.fill("what can you do")
        await box.press("Enter")
        await wait_hook(page, "v.state === 'speaking' && v.outputLevel > 0.02", 15)
        await page.wait_for_timeout(600)
        await page.get_by_test_id("stop").click()
        await wait_hook(page, "v.haltEvents.length >= 1", 2)
        await page.wait_for_timeout(200)
        assert await hook(page, "v.outputLevel") < 0.005
        sent = await hook(page, "v.messages.filter(m => m.dir === 'out').map(m => m.type)")
        assert "interrupt" in sent and "audio.played" in sent
        await page.get_by_test_id("interrupted").wait_for(timeout=5000)
        assert "Stopped" in await page.get_by_test_id("interrupted").inner_text()
        await shot(page, "stopped-narrow-dark")

        # Push-to-talk: frames flow while Space is held, then a short silent tail.
        await page.locator("body").click(position={"x": 5, "y": 5})
        await page.keyboard.down("Space")
        await page.wait_for_timeout(500)
        held = await hook(page, "v.framesSent")
        assert held >= 8
        assert await page.get_by_test_id("talk").get_attribute("aria-pressed") == "true"
        await page.keyboard.up("Space")
        await page.wait_for_timeout(1200)
        after = await hook(page, "v.framesSent")
        assert 15 <= after - held <= 30  # the 20-frame (640 ms) tail, then nothing
        await page.wait_for_timeout(400)
        assert await hook(page, "v.framesSent") == after


@pytest.mark.timeout(75)
async def test_approval_dialog_approve_and_reject(engine_factory, project, tmp_path):
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with (
        stack(engine_factory, [project]) as ui,
        browser(quiet, scheme="dark", height=860) as page,
    ):
        await open_page(page, ui)
        box = page.get_by_test_id("text-input")

        # --- approve, with the keyboard only
        await box.fill("run the tests")
        await box.press("Enter")
        dialog = page.get_by_test_id("approval-dialog")
        await dialog.wait_for(timeout=15_000)
        assert "make test" in await page.get_by_test_id("approval-command").inner_text()
        assert (await page.get_by_test_id("approval-reason").inner_text()).strip()
        assert str(project) in await page.get_by_test_id("approval-roots").inner_text()
        assert await hook(page, "v.state") == "awaiting_approval"
        await page.wait_for_timeout(400)
        focused = await page.evaluate("document.activeElement?.dataset?.testid ?? null")
        assert focused != "approve"  # nothing approved by default
        await page.keyboard.press("Enter")
        await page.wait_for_timeout(300)
        assert await dialog.is_visible()  # Enter alone decides nothing
        await shot(page, "approval-dark")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.dataset.testid") == "reject"
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.dataset.testid") == "approve"
        await page.keyboard.press("Enter")
        await dialog.wait_for(state="hidden", timeout=5000)
        row = page.locator("[data-testid=activity-row][data-status=success]", has_text="make test")
        await row.wait_for(timeout=15_000)
        assert await row.get_attribute("data-decision") == "approved"
        assert "exit 0" in await row.inner_text()
        await wait_hook(page, "v.turns.length === 1 && v.turns[0].replies.some(r => r.done)", 15)
        reply = (await page.get_by_test_id("reply").last.inner_text()).lower()
        assert "pass" in reply
        await shot(page, "approved-dark")

        # --- reject with Esc, in the light theme
        await page.emulate_media(color_scheme="light")
        await wait_hook(page, "v.state === 'listening'", 20)
        await box.fill("run the tests")
        await box.press("Enter")
        await dialog.wait_for(timeout=15_000)
        await page.wait_for_timeout(300)  # the dialog's entrance animation
        await shot(page, "approval-light")
        await page.keyboard.press("Escape")
        await dialog.wait_for(state="hidden", timeout=5000)
        rejected = page.locator(
            "[data-testid=activity-row][data-status=rejected]", has_text="make test"
        )
        await rejected.wait_for(timeout=15_000)
        assert await rejected.get_attribute("data-decision") == "rejected"
        commands = page.locator("[data-testid=activity-row]", has_text="make test")
        assert await commands.count() == 2
        await wait_hook(page, "v.turns.length === 2 && v.turns[1].replies.some(r => r.done)", 15)
        # Esc rejected the action and did nothing else (no stop of the reply).
        sent = await hook(page, "v.messages.filter(m => m.dir === 'out').map(m => m.type)")
        assert "interrupt" not in sent
        assert await page.get_by_test_id("interrupted").count() == 0
        await shot(page, "rejected-light")


@pytest.mark.timeout(45)
async def test_lost_runtime_is_reported_and_the_page_reconnects(engine_factory, project):
    # The same launch link must work again after a restart on the same port.
    secret = "e2e-" + "s" * 40
    async with browser(None, scheme="light", height=600) as page:
        async with stack(engine_factory, [project], secret=secret) as ui:
            await open_page(page, ui)
            port = ui.port
        banner = page.get_by_test_id("banner-offline")
        await banner.wait_for(timeout=10_000)
        assert await hook(page, "v.state") == "offline"
        assert "Reconnecting" in await banner.inner_text()
        await shot(page, "offline-light")
        # The restarted runtime asks the engine for PCM: the page plays what audio.start names.
        async with stack(engine_factory, [project], port=port, secret=secret, encoding="pcm_s16le"):
            await wait_hook(page, "v.connection === 'open' && v.engine === 'connected'", 20)
            await banner.wait_for(state="hidden", timeout=5000)
            await page.get_by_test_id("text-input").fill("where am I")
            await page.get_by_test_id("text-input").press("Enter")
            await page.get_by_test_id("reply").first.wait_for(timeout=15_000)
            await wait_hook(page, "v.played.some(p => p.why === 'ended')", 20)
            r = (await hook(page, "v.responses"))[-1]
            assert r["encoding"] == "pcm_s16le" and r["decoder"] == "pcm"
            assert r["peakLevel"] > 0.05 and r["playedMs"] > 800
