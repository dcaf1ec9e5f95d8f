"""Written reply text is rendered for the ear only at the TTS call."""

from collections.abc import AsyncIterator

import pytest

from voco.engine.playout import ResponseAudio
from voco.engine.speaker import Speaker
from voco.engine.spoken_text import speakable
from voco.providers.base import TTS, TTSCapabilities


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Open README.md in src/voco.", "Open README dot md in src slash voco."),
        ("I read main.py, it has 3.5 lines.", "I read main dot py, it has 3.5 lines."),
        ("parse_config is in config.py.", "parse config is in config dot py."),
        ("spoken_names.py has 40 lines.", "spoken names dot py has 40 lines."),
        ("The .gitignore file, e.g. this.", "The dot gitignore file, e.g. this."),
        ("Run pytest tests/engine/ now.", "Run pytest tests slash engine now."),
        ("Version 1.2.3 is out, half is 1/2.", "Version 1.2.3 is out, half is 1/2."),
        ("See https://example.org/a.html now", "See https://example.org/a.html now"),
        ("I am done. Next one.", "I am done. Next one."),
        ("README dot md", "README dot md"),  # already spoken: unchanged
    ],
)
def test_names_and_paths_are_spoken(written: str, spoken: str) -> None:
    assert speakable(written) == spoken


class RecordingTTS(TTS):
    name = "recording"
    capabilities = TTSCapabilities(streaming=False)
    sample_rate = 24000

    def __init__(self) -> None:
        self.said: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.said.append(text)
        yield b"\x00\x00" * 240


async def test_speaker_speaks_the_rendering_and_keeps_the_written_text() -> None:
    tts = RecordingTTS()
    audio = ResponseAudio("r1")
    sent: list[bytes] = []

    async def on_start() -> None:
        audio.started_at = 0.0

    async def send(data: bytes) -> bool:
        sent.append(data)
        return True

    async def on_end(ms: int) -> None:
        pass

    speaker = Speaker(tts, audio, "pcm16", on_start=on_start, send_audio=send, on_end=on_end)
    speaker.feed("I opened README.md. ")
    speaker.finish()
    await speaker.run()
    assert tts.said == ["I opened README dot md."]
    assert [c.text for c in audio.clauses] == ["I opened README.md."]
