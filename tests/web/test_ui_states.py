"""The page's everyday states in Chromium (issue 13, "The web page"), each with a
screenshot in ``tests/.artifacts/``: a reload that restores the conversation and
Activity, expandable Activity rows (a failed command, git status naming files),
a stale link, a typed turn queued while offline, the settings panel and the
mode, a 390 px wide phone, and latency figures for an interrupted reply.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.speech import silence
from tests.web import test_ui_e2e as e2e
from tests.web.test_ui_e2e import browser, hook, open_page, shot, speech_wav, stack, wait_hook

# the shared harness's fixtures and skips (Chromium, bubblewrap)
pytestmark = e2e.pytestmark
built_ui = e2e.built_ui
project = e2e.project


def _git(root: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    run("init", "-q", "-b", "main")
    run("-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (root / "README.md").write_text("# Demo, changed\n")
    (root / "notes.txt").write_text("new\n")


async def _turn(page, text: str, n: int) -> None:
    box = page.get_by_test_id("text-input")
    await box.fill(text)
    await box.press("Enter")
    await wait_hook(
        page, f"v.turns.length >= {n} && v.turns[{n - 1}].replies.some(r => r.done)", 25
    )
    await wait_hook(page, "v.state === 'listening'", 25)


@pytest.mark.timeout(120)
async def test_reload_restores_the_conversation_and_activity_rows_open(
    engine_factory, project, tmp_path
):
    _git(project)
    (project / "Makefile").write_text(
        "test:\n\t@echo 'ran 3'; echo '\\033[31m1 failed\\033[0m' >&2; exit 1\n"
    )
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with (
        stack(engine_factory, [project], approve="all") as ui,
        browser(quiet, scheme="dark", height=900) as page,
    ):
        await open_page(page, ui)
        await _turn(page, "git status", 1)
        await _turn(page, "run the tests", 2)
        # a failed command is red, never "done"
        failed = page.locator("[data-testid=activity-row][data-failed=true]", has_text="make test")
        await failed.wait_for(timeout=10_000)
        assert "failed · exit 2" in await failed.get_by_test_id("activity-status").inner_text()
        await failed.get_by_test_id("activity-toggle").click()
        detail = failed.get_by_test_id("activity-detail")
        assert "1 failed" in await detail.get_by_test_id("detail-stderr").inner_text()
        assert "ran 3" in await detail.get_by_test_id("detail-stdout").inner_text()
        assert "exit code 2" in await detail.get_by_test_id("detail-exit").inner_text()
        # git status names the files
        status = page.locator("[data-testid=activity-row]", has_text="git status")
        summary = await status.get_by_test_id("activity-summary").inner_text()
        assert "README.md" in summary and "notes.txt" in summary
        await status.get_by_test_id("activity-toggle").click()
        assert "notes.txt" in await status.get_by_test_id("detail-changed").inner_text()
        await shot(page, "activity-expanded-dark")

        thread = await hook(page, "v.threadId")
        await page.reload()
        await wait_hook(page, "v.connection === 'open' && v.history.loaded", 20)
        assert await hook(page, "v.threadId") == thread
        turns = await hook(page, "v.turns.map(t => t.userText)")
        assert turns == ["git status", "run the tests"]
        restored = page.locator("[data-testid=activity-row][data-restored=true]")
        assert await restored.count() >= 2
        again = page.locator("[data-testid=activity-row][data-failed=true]", has_text="make test")
        await again.get_by_test_id("activity-toggle").click()
        assert "1 failed" in await again.get_by_test_id("detail-stderr").inner_text()
        await shot(page, "reloaded-restored-dark")


@pytest.mark.timeout(60)
async def test_a_stale_link_says_so(engine_factory, project, tmp_path):
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with stack(engine_factory, [project]) as ui, browser(quiet, scheme="light") as page:
        await page.goto(f"http://127.0.0.1:{ui.port}/?secret=stale-{'x' * 30}&rawmic=1")
        banner = page.get_by_test_id("banner-badlink")
        await banner.wait_for(timeout=10_000)
        text = await banner.inner_text()
        assert "no longer valid" in text and "voco up" in text
        assert "Reconnecting" not in text
        assert await page.get_by_test_id("banner-offline").count() == 0
        assert await hook(page, "v.badLink") is True
        await shot(page, "stale-link-light")


@pytest.mark.timeout(90)
async def test_a_turn_typed_while_offline_is_queued_then_sent(engine_factory, project, tmp_path):
    secret = "e2e-" + "q" * 40  # the same link works after the restart
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with browser(quiet, scheme="dark", height=700) as page:
        async with stack(engine_factory, [project], secret=secret) as ui:
            await open_page(page, ui)
            port = ui.port
        await page.get_by_test_id("banner-offline").wait_for(timeout=10_000)
        box = page.get_by_test_id("text-input")
        await box.fill("where am I")
        await box.press("Enter")
        queued = page.get_by_test_id("queued-turn")
        await queued.wait_for(timeout=5000)
        assert "Not sent yet" in await queued.inner_text()
        assert await hook(page, "v.outbox") == ["where am I"]
        await shot(page, "queued-offline-dark")
        async with stack(engine_factory, [project], port=port, secret=secret):
            await wait_hook(page, "v.outbox.length === 0", 30)
            await (
                page.get_by_test_id("user-text")
                .filter(has_text="where am I")
                .wait_for(timeout=15_000)
            )
            await queued.wait_for(state="detached", timeout=5000)


@pytest.mark.timeout(60)
async def test_settings_panel_mode_and_approval_change(engine_factory, project, tmp_path):
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with stack(engine_factory, [project]) as ui, browser(quiet, scheme="light") as page:
        await open_page(page, ui)
        assert "Command mode" in await page.get_by_test_id("info-mode").inner_text()
        assert str(project) in await page.get_by_test_id("info-root").inner_text()
        await page.get_by_test_id("open-settings").click()
        panel = page.get_by_test_id("settings")
        await panel.wait_for(timeout=5000)
        assert "Command mode" in await panel.get_by_test_id("settings-mode").inner_text()
        assert str(project) in await panel.get_by_test_id("settings-roots").inner_text()
        assert await page.get_by_test_id("voice-select").is_disabled()  # one voice installed
        assert "one voice" in await page.get_by_test_id("voice-note").inner_text()
        assert await page.get_by_test_id("approve-all").count() == 0  # never offered
        await page.wait_for_timeout(250)  # the dialog's entrance animation
        await shot(page, "settings-light")
        await page.get_by_test_id("approve-deny").click()
        await wait_hook(page, "v.approve === 'deny'", 10)
        await page.keyboard.press("Escape")
        await panel.wait_for(state="hidden", timeout=5000)
        assert "always refuse" in await page.get_by_test_id("info-approve").inner_text()
        # the runtime refuses the risky action by policy now, without asking
        await _turn(page, "run the tests", 1)
        row = page.locator("[data-testid=activity-row][data-status=rejected]", has_text="make test")
        await row.wait_for(timeout=10_000)
        assert await page.get_by_test_id("approval-dialog").count() == 0


@pytest.mark.timeout(60)
async def test_phone_width_header_fits(engine_factory, project, tmp_path):
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with (
        stack(engine_factory, [project]) as ui,
        browser(quiet, scheme="dark", width=390, height=844) as page,
    ):
        await open_page(page, ui)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        boxes = await page.evaluate(
            """() => [...document.querySelectorAll('header button, header [data-testid]')]
                 .map(e => { const r = e.getBoundingClientRect();
                             return {id: e.dataset.testid || e.ariaLabel, l: r.left, r: r.right}; })
                 .filter(b => b.r > b.l)"""
        )
        assert boxes and all(b["l"] >= 0 and b["r"] <= 390 for b in boxes), boxes
        roots = next(b for b in boxes if b["id"] == "roots")
        others = [b for b in boxes if b["id"] != "roots"]
        assert all(roots["r"] <= b["l"] for b in others)  # the folder chip overlaps nothing
        await shot(page, "phone-390-dark")


@pytest.mark.timeout(60)
async def test_latency_shows_the_last_turn_even_when_interrupted(engine_factory, project, tmp_path):
    quiet = speech_wav(tmp_path / "quiet.wav", silence(1000))
    async with stack(engine_factory, [project]) as ui, browser(quiet, scheme="light") as page:
        await open_page(page, ui)
        box = page.get_by_test_id("text-input")
        await box.fill("what can you do")
        await box.press("Enter")
        await wait_hook(page, "v.state === 'speaking' && v.outputLevel > 0.02", 20)
        await page.get_by_test_id("stop").click()
        await page.get_by_test_id("interrupted").wait_for(timeout=5000)
        card = page.get_by_test_id("latency-page")
        await card.wait_for(timeout=5000)
        figure = await page.get_by_test_id("latency-e2e").inner_text()
        assert figure.endswith("ms") or figure.endswith(" s")
        assert "interrupted" in await card.inner_text()
        await shot(page, "latency-interrupted-light")
