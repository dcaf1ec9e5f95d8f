"""The embedded recogniser on real speech (two different synthetic voices)."""

import re

import numpy as np
import pytest

from tests.speech import espeak_speech, piper_speech, silence
from voco.providers.whisper_stt import looks_degenerate


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.mark.parametrize(
    ("voice", "text"),
    [
        (piper_speech, "Open the readme file please."),
        (piper_speech, "List the files in the source directory."),
        (espeak_speech, "Run the tests."),
        (espeak_speech, "Search for token."),
        (piper_speech, "Stop."),
        (piper_speech, "What does the main function do, and why does the build fail?"),
    ],
)
async def test_transcribes_real_speech(whisper, voice, text):
    pcm = np.concatenate([silence(200), voice(text), silence(300)])
    got = await whisper.transcribe(pcm.astype(np.float32) / 32768)
    expected = words(text)
    hits = sum(w in words(got) for w in expected)
    assert hits >= max(1, len(expected) - 1), got
    assert not looks_degenerate(got)


async def test_stream_buffers_and_preview_matches_finish(whisper):
    stream = await whisper.open_stream()
    pcm = np.concatenate([silence(100), piper_speech("Git status."), silence(200)])
    await stream.push(pcm.tobytes())
    preview = await stream.preview()
    final = await stream.finish()
    assert preview == final and "status" in final.lower()


async def test_silence_and_tiny_input_give_empty_text(whisper):
    stream = await whisper.open_stream()
    await stream.push(silence(50).tobytes())
    assert await stream.finish() == ""


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("Run the tests. Run the tests. Run the tests. Run the tests.", True),
        ("search for token search for token search for token", True),
        ("Stop. Stop. Stop. Stop.", True),
        ("Open the read me. Open the read me.", True),
        ("I said no, no, I said no.", False),
        ("Run the tests, then run the tests again.", False),
        ("Open the readme file, please.", False),
        ("What does main dot py do, and why is the build failing on step two?", False),
        ("no", False),
    ],
)
def test_degenerate_output_detection(text, bad):
    assert looks_degenerate(text) is bad


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Open the read me. Open the read me.", "Open the read me."),
        (" Run the tests. Run the tests. Run the tests. Run the", " Run the tests."),
        ("Stop. Stop. Stop. Stop.", "Stop."),
        ("search for token search for token search for", "search for token"),
        ("List the files in source.", "List the files in source."),
        ("I said no, no, I said no.", "I said no, no, I said no."),
        ("Run the tests, then run the tests again.", "Run the tests, then run the tests again."),
    ],
)
def test_loops_are_cut_to_their_first_pass(raw, clean):
    from voco.providers.whisper_stt import collapse_loops

    assert collapse_loops(raw) == clean
    assert not looks_degenerate(collapse_loops(raw))
