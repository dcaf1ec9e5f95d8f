"""The local runtime end to end: real engine (command mode), real sandbox,
real WebSocket, real speech."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.speech import piper_speech, silence, write_wav
from voco.local.engine_client import EngineClient
from voco.local.mcp_bridge import McpBridge
from voco.local.sandbox import verify
from voco.local.talk import talk
from voco.protocol import messages as m

pytestmark = pytest.mark.timeout(120)
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap missing: commands cannot run sandboxed"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("# Demo project\n\nA tiny project for Voco's tests.\n")
    (root / "src" / "main.py").write_text("print('hello')\n")
    (root / "Makefile").write_text("test:\n\t@echo '3 passed, 0 failed'\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    return root


async def test_spoken_question_through_the_whole_loop(engine_factory, project, tmp_path):
    wav = write_wav(
        tmp_path / "q.wav",
        np.concatenate([silence(300), piper_speech("Please open the readme file."), silence(200)]),
    )
    async with engine_factory() as eng:
        result = await talk(eng.url, eng.token(), wav=wav, bridge=McpBridge([project], "deny"))
    # the words were heard (Piper's synthesis varies per run, and base hears
    # "readme" as "REEMY" on some of them: recognition accuracy is
    # bench/bench_stt.py's measure, not this test's) and the request reached the
    # project: the reply names its README either way
    assert "open" in result.transcript.lower() and "file" in result.transcript.lower()
    assert "demo project" in result.reply.lower() or "readme" in result.reply.lower()
    assert result.model == "command-mode"
    audio, rate = sf.read(io.BytesIO(bytes(result.audio)))
    assert rate == 24000 and len(audio) / rate > 1.0
    assert np.abs(audio).max() > 0.05  # it speaks
    assert {"e2e_ms", "stt_ms", "tts_ttfb_ms"} <= set(result.metrics)


async def test_text_turn_with_pcm_output(engine_factory, project):
    async with engine_factory() as eng:
        result = await talk(
            eng.url,
            eng.token(),
            text="list the files in src",
            bridge=McpBridge([project], "deny"),
            encoding="pcm_s16le",
        )
    assert "main" in result.reply.lower()
    assert len(result.audio) % 2 == 0 and len(result.audio) > 24000


async def test_scope_escape_is_refused_by_the_runtime(engine_factory, project):
    async with engine_factory() as eng:
        result = await talk(
            eng.url,
            eng.token(),
            text="open dot dot slash secret dot txt",
            bridge=McpBridge([project], "deny"),
        )
    assert "TOP SECRET" not in result.reply


@needs_bwrap
@pytest.mark.parametrize("decision", ["approve", "reject", "policy"])
async def test_approval_wait_then_decision(engine_factory, project, decision):
    asked = threading.Event()
    answer = threading.Event()

    def approver(request: m.McpRequest, reason: str) -> bool:
        asked.set()
        answer.wait(20)
        return decision == "approve"

    async with engine_factory() as eng:
        client = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        if decision == "policy":
            bridge = McpBridge([project], "deny")
        else:  # the terminal prompt, replaced by the test's hand
            bridge = McpBridge([project], "ask", approver=approver)
        await client.send(m.TextInput(text="run the tests"))
        seen: list[m.ServerMessage] = []
        done = None
        while done is None:
            r = await asyncio.wait_for(client.recv(), 30)
            if r.message is None:
                continue
            seen.append(r.message)
            if isinstance(r.message, m.McpRequest):
                bridge.submit(r.message, client)
            if isinstance(r.message, m.State) and r.message.value == "awaiting_approval":
                assert asked.wait(5)
                answer.set()
            if isinstance(r.message, m.AgentDone):
                done = r.message
        await bridge.aclose()
        await client.close()
    runs = [x for x in seen if isinstance(x, m.McpRequest) and x.action == "execute_command"]
    assert [r.payload for r in runs] == [{"command": "make test"}]
    text = done.text.lower()
    if decision == "policy":
        assert not asked.is_set()
        assert not any(isinstance(x, m.State) and x.value == "awaiting_approval" for x in seen)
    else:
        assert any(isinstance(x, m.State) and x.value == "awaiting_approval" for x in seen)
        # the assistant said what it was waiting for (spoken, marked transient) ...
        said = [x for x in seen if isinstance(x, m.AgentDelta) and x.transient]
        assert said and "approval" in said[0].text
        # ... and the sentence is not part of the reply once decided (issue 13)
        assert "waiting for your approval" not in text
    if decision == "approve":
        assert "3 passed" in text or "passed" in text
    else:
        assert "passed" not in text
    # every request and decision is in the audit log, and the chain verifies
    log = Path(os.environ["VOCO_AUDIT_LOG"])
    assert verify(log).ok
    recorded = log.read_text()
    assert "make test" in recorded and runs[0].id in recorded
