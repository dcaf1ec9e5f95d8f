"""Load bench: N real-time sessions against one engine pinned to one core (issue 11 §4).

    uv run python bench/bench_load.py [--mode remote|embedded] [--sessions 50,100,200]
                                      [--seconds 20] [--profile OUT.txt]

No assertions: figures to read. What runs where (2-core machine):

* the engine, ``voco serve --database memory``, pinned with ``taskset -c 0``;
* this load generator and the vendor doubles on core 1 (``taskset -c 1``): the
  Deepgram, Cartesia and Anthropic doubles of ``tests/providers/doubles``, real
  WebSocket/SSE servers on 127.0.0.1 speaking the vendors' wire formats.
  ``--mode embedded`` uses Whisper and Piper inside the engine instead (the
  language model stays the Anthropic double).

Each session is a real WebSocket client (the ``websockets`` library with its
defaults, as ``voco local`` connects; its audio frames are pre-built and
written whole, see :func:`ws_binary_frame`) that streams 16 kHz PCM in 32 ms
chunks in real time: a quiet room (-70 dBFS noise, ``--room-dbfs``), and an espeak-ng
utterance ("list the files please") every ~8 s, staggered across sessions.
Every other reply is interrupted 0.6 s into its audio by a second utterance
(barge-in under load). The model double
answers with a ``list_dir`` tool call, which the session answers as a runtime
would (``mcp.response``), then with a spoken sentence. Each session pings once
a second; the pong round trip is the lag figure.

The Deepgram double "hears" words only in constant-amplitude frames, so the
bench's subclass maps any voiced frame to the words "list the files": the VAD
sees real speech, the transcript is the one the scripted model expects.

Printed per N: ping p50/p99, dropped frames (a chunk not sent because the
engine had not read the previous ones: >32 KiB waiting in the socket), the
generator's own tick lag (it must stay small for the figures to mean anything),
engine CPU (% of its core), first reply audio after the end of an utterance,
barge-in latency (onset of the interrupting speech sent → ``halt_audio``
received), refusals, and RSS per idle session. Finally: sessions per core at
p99 ping < 32 ms and no dropped frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from voco.engine.event_loop import DEFAULT_LOOP, LOOPS  # light: no model, no server

CHUNK_MS = 32
CHUNK_BYTES = 16_000 * CHUNK_MS // 1000 * 2
CYCLE_S = 8.0
PING_EVERY_S = 1.0
BARGE_AFTER_S = 0.6
SPEECH = True  # --no-speech: room noise only (the per-frame path, nothing else)
MAX_BUFFERED = 32 * 1024  # bytes waiting in our socket: the engine is not reading
SILENCE: list[bytes] = []  # the room between utterances, framed: see room_noise()
REPLY = "I found three files: the readme, the main module and the tests. Which one first?"
RESULT = {"entries": [{"name": n, "type": "file"} for n in ("README.md", "main.py", "tests")]}


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ the doubles


async def run_doubles() -> None:
    """Child process: the three vendor doubles; prints their URLs, runs until stdin closes."""
    from starlette.requests import Request
    from starlette.responses import Response

    from tests.providers.doubles import deepgram as dg
    from tests.providers.doubles.anthropic import AnthropicDouble, Reply, Text, ToolUse
    from tests.providers.doubles.cartesia import CartesiaDouble

    words = {w: amp for amp, w in dg.DeepgramDouble().vocab.items()}
    said = [words["list"], words["the"], words["files"]]

    class HearingRecognizer(dg._Recognizer):
        """Any voiced frame counts; ~200 ms per word of "list the files"."""

        voiced = 0  # voiced frames of the current utterance

        async def _frame(self, value: int) -> None:
            if abs(value) < 100:  # the bench's room noise (≤ -70 dBFS) or zeros
                self.voiced = 0
                await super()._frame(0)
                return
            self.voiced += 1
            await super()._frame(said[min(self.voiced // 10, 2)])

    class HearingDeepgram(dg.DeepgramDouble):
        async def _handler(self, ws: Any) -> None:
            from urllib.parse import parse_qs, urlsplit

            parts = urlsplit(ws.request.path)
            session = dg.Session(
                query={k: v[-1] for k, v in parse_qs(parts.query).items()}, headers={}
            )
            await HearingRecognizer(self, ws, session).run()

    class ToolThenText(AnthropicDouble):
        """A tool call for a new question; a sentence once the tool answered."""

        calls = 0

        async def messages(self, request: Request) -> Response:
            body = json.loads(await request.body())
            last = body.get("messages", [{}])[-1].get("content")
            answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
            if answered:
                self.replies.append(Reply(blocks=[Text(REPLY.split(" "))]))
            else:  # unique ids, as Anthropic's are (a reused id is a replay to the runtime)
                self.calls += 1
                self.replies.append(
                    Reply(blocks=[ToolUse(f"toolu_{self.calls}", "list_dir", {"path": "."})])
                )
            self.requests.clear()  # bounded: this runs for many turns
            self.headers.clear()
            return await super().messages(request)

    deepgram = HearingDeepgram()
    deepgram.sessions = _Forgetful()  # type: ignore[assignment]
    cartesia = CartesiaDouble(chunk_delay=0.0)
    cartesia.requests = _Forgetful()  # type: ignore[assignment]
    cartesia.cancels = _Forgetful()  # type: ignore[assignment]
    anthropic = ToolThenText()
    async with deepgram.running(), cartesia.running(), anthropic.running():
        print(
            json.dumps(
                {"deepgram": deepgram.url, "cartesia": cartesia.url, "anthropic": anthropic.url}
            ),
            flush=True,
        )
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class _Forgetful(list):  # type: ignore[type-arg]
    """A list the doubles append their records to, keeping nothing (long runs)."""

    def append(self, item: Any) -> None:
        pass


# ------------------------------------------------------------------ the engine


@dataclass
class Engine:
    proc: subprocess.Popen[bytes]
    url: str
    home: Path
    _users: int = 0
    idle_cpu: float = 0.0  # its CPU (fraction of a core) with no session open

    def token(self) -> str:
        """A token of a new user: the per-user session cap (16) is not what this measures."""
        from voco.auth.tokens import TokenAuthority

        os.environ["VOCO_HOME"] = str(self.home)  # the engine's signing key
        self._users += 1
        return str(TokenAuthority().issue(f"bench-{self._users}"))

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def start_engine(
    mode: str,
    urls: dict[str, str],
    home: Path,
    admission: str,
    log: str | None = None,
    loop: str = DEFAULT_LOOP,
) -> Engine:
    port = free_port()
    env = dict(os.environ, VOCO_HOME=str(home), ANTHROPIC_API_KEY="sk-ant-test")
    env["ANTHROPIC_BASE_URL"] = urls["anthropic"]
    stt, tts = ("whisper", "piper") if mode == "embedded" else ("deepgram", "cartesia")
    if mode == "remote":
        env.update(
            DEEPGRAM_API_KEY="dg-test",
            DEEPGRAM_BASE_URL=urls["deepgram"],
            CARTESIA_API_KEY="sk_car_test",
            CARTESIA_BASE_URL=urls["cartesia"],
        )
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "voco.cli", "serve", "--port", str(port)]
    cmd += ["--database", "memory", "--llm", "anthropic", "--stt", stt, "--tts", tts]
    cmd += ["--admission", admission, "--loop", loop]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"ready on" in line:
            break
        if proc.poll() is not None:
            raise SystemExit(f"engine did not start: {line.decode()}")
    # keep draining its log so it never blocks on a full pipe
    import threading

    sink = open(log, "wb") if log else None  # noqa: SIM115 - lives as long as the engine

    def drain() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            if sink is not None:
                sink.write(line)
                sink.flush()

    threading.Thread(target=drain, daemon=True).start()
    return Engine(proc, f"ws://127.0.0.1:{port}/v1/session", home)


# ------------------------------------------------------------------ the sessions


@dataclass
class Figures:
    ping_ms: list[float] = field(default_factory=list)
    first_audio_ms: list[float] = field(default_factory=list)
    barge_ms: list[float] = field(default_factory=list)
    tick_lag_ms: list[float] = field(default_factory=list)
    dropped: int = 0
    sent: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    mcp: int = 0


END, BARGE = "end", "barge"  # marks on queued chunks: timed when really sent


def ws_binary_frame(payload: bytes) -> bytes:
    """One complete client→server binary WebSocket frame (RFC 6455 §5.2), built once.

    Why: the generator sends N × 31 frames a second and must stay lighter than
    the engine it measures; framing each chunk through the websockets library
    per send was most of its cost. A client frame must be masked; its key is
    all zeros here (the payload is then unchanged, so frames are built ahead of
    time). The engine unmasks it like any other — the same bytes on the wire as a
    browser's frame with that key."""
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([0x82, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x82, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + bytes(4) + payload


def chunked(pcm: bytes) -> list[bytes]:
    return [ws_binary_frame(pcm[i : i + CHUNK_BYTES]) for i in range(0, len(pcm), CHUNK_BYTES)]


class LoadSession:
    """One client: audio queued for the shared ticker, replies read by its own task.

    Why the marks and the expected-next-message chain: the figures are taken
    from when a chunk is really sent (the ticker may run late), and a reply is
    paired with the utterance it answers only through the engine's own order
    — ``vad.speech_end`` for this utterance, then ``audio.start``, then its
    first audio frame. Pairing "the next audio frame after the utterance was
    queued" (as this bench first did) took a late frame of the *previous*
    reply at overload and printed negative first-audio and barge-in figures.
    """

    def __init__(
        self, ws: Any, figs: Figures, utter: list[bytes], barge: list[bytes], offset_s: float
    ) -> None:
        self.ws = ws
        self.f = figs
        self.utter, self.barge = utter, barge
        self.queue: list[tuple[bytes, str | None]] = []
        self.next_utter = time.monotonic() + offset_s if SPEECH else float("inf")
        self.next_ping = time.monotonic() + (offset_s % PING_EVERY_S)
        self.pings: dict[int, float] = {}
        self.ping_id = 0
        self.cycle = 0
        self.cycle_i = 0
        self.utter_end_at: float | None = None  # last chunk of an utterance sent
        self.awaiting: str | None = None  # "vad.speech_end", then "audio.start", then "audio"
        self.barge_due: float | None = None
        self.barge_sent_at: float | None = None  # first chunk of the barge-in sent
        self.measuring = False
        self.reader: asyncio.Task[None] | None = None
        self.flush_id = -1
        self.flushed = asyncio.Event()

    def say(self, chunks: list[bytes], first: str | None = None) -> None:
        """Queue ``chunks`` (framed) after what is queued; the last is marked END."""
        marks: list[str | None] = [None] * len(chunks)
        marks[0], marks[-1] = first, END
        self.queue.extend(zip(chunks, marks, strict=True))

    async def tick(self, now: float) -> None:
        if now >= self.next_utter:
            self.next_utter += CYCLE_S
            self.cycle += 1
            self.say(self.utter)
        if self.barge_due is not None and now >= self.barge_due:
            self.barge_due = None
            self.say(self.barge, first=BARGE)
        if self.queue:
            chunk, mark = self.queue.pop(0)
        else:
            chunk, mark = SILENCE[self.cycle_i % len(SILENCE)], None
        self.cycle_i += 1
        if self.ws.transport.get_write_buffer_size() > MAX_BUFFERED:
            self.f.dropped += self.measuring
        else:
            self.f.sent += self.measuring
            # a whole pre-built frame in one write: never interleaves with the
            # library's own (text) frames, which it also writes whole
            self.ws.transport.write(chunk)
        sent = time.monotonic()
        if mark == BARGE:
            self.barge_sent_at = sent
        elif mark == END:
            self.utter_end_at, self.awaiting = sent, "vad.speech_end"
        if now >= self.next_ping:
            self.next_ping += PING_EVERY_S
            self.ping_id += 1
            self.pings[self.ping_id] = time.monotonic()
            await self.ws.send(json.dumps({"type": "ping", "id": self.ping_id}))

    async def flush(self) -> None:
        """Silence until the engine has answered a ping sent after all our audio."""
        self.measuring = False
        self.flushed = asyncio.Event()
        self.ping_id += 1
        self.flush_id = self.ping_id
        with contextlib.suppress(Exception):  # a closed session has nothing to flush
            await self.ws.send(json.dumps({"type": "ping", "id": self.ping_id}))
            await asyncio.wait_for(self.flushed.wait(), 60)

    async def read(self) -> None:
        try:
            await self._read()
        except Exception as exc:  # closed by the engine (counted) or by us
            if self.measuring:
                self.f.errors.append(type(exc).__name__)
        finally:
            self.flushed.set()

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            if isinstance(raw, bytes):
                if self.awaiting == "audio" and self.utter_end_at is not None:
                    if self.measuring:
                        self.f.first_audio_ms.append((now - self.utter_end_at) * 1000)
                    self.awaiting = None
                    if self.cycle % 2 == 0 and self.barge_due is None:
                        self.barge_due = now + BARGE_AFTER_S
                continue
            msg = json.loads(raw)
            kind = msg["type"]
            if kind == "pong":
                if msg["id"] == self.flush_id:
                    self.flushed.set()
                sent = self.pings.pop(msg["id"], None)
                if sent is not None and self.measuring:
                    self.f.ping_ms.append((now - sent) * 1000)
            elif kind == "mcp.request":
                self.f.mcp += self.measuring
                answer = {"type": "mcp.response", "id": msg["id"], "status": "success"}
                await self.ws.send(json.dumps(answer | {"result": RESULT}))
            elif kind == "halt_audio" and self.barge_sent_at is not None:
                if self.measuring:
                    self.f.barge_ms.append((now - self.barge_sent_at) * 1000)
                self.barge_sent_at = None
            elif kind == self.awaiting and kind in ("vad.speech_end", "audio.start"):
                self.awaiting = "audio.start" if kind == "vad.speech_end" else "audio"
            elif kind == "error" and self.measuring:
                self.f.errors.append(msg.get("code", "?"))


async def open_session(url: str, token: str, figs: Figures) -> Any | None:
    """Connect and start; None when refused (counted)."""
    import websockets

    try:
        ws = await websockets.connect(url, max_size=4 << 20, open_timeout=30)
        await ws.send(json.dumps({"type": "session.start", "token": token}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if msg["type"] == "session.ready":
                return ws
            if msg["type"] == "error" and msg.get("fatal"):
                figs.refused += 1
                await ws.close()
                return None
    except Exception as exc:  # refused or closed during the handshake
        figs.refused += 1
        figs.errors.append(type(exc).__name__)
        return None


async def connect_all(engine: Engine, n: int, figs: Figures) -> list[Any]:
    out: list[Any] = []
    for i in range(0, n, 20):  # in waves: a connect storm is not what this measures
        waves = (open_session(engine.url, engine.token(), figs) for _ in range(min(20, n - i)))
        got = await asyncio.gather(*waves)
        out += [ws for ws in got if ws is not None]
    return out


async def ticker(
    sessions: list[LoadSession], figs: Figures, until: float, measure_from: float
) -> None:
    loop = asyncio.get_running_loop()
    due = loop.time()
    while (now := time.monotonic()) < until:
        lag = (loop.time() - due) * 1000
        if now >= measure_from:
            figs.tick_lag_ms.append(lag)
            for s in sessions:
                s.measuring = True
        for s in sessions:
            try:
                await s.tick(now)
            except Exception as exc:  # closed by the engine
                figs.errors.append(type(exc).__name__)
                sessions.remove(s)
                break
        due += CHUNK_MS / 1000
        await asyncio.sleep(max(0.0, due - loop.time()))


async def run_level(
    engine: Engine,
    n: int,
    seconds: float,
    utter: list[bytes],
    barge: list[bytes],
    profile: str | None,
) -> dict[str, Any]:
    figs = Figures()
    sockets = await connect_all(engine, n, figs)
    sessions = [
        LoadSession(ws, figs, utter, barge, offset_s=1.0 + CYCLE_S * i / max(1, len(sockets)))
        for i, ws in enumerate(sockets)
    ]
    for s in sessions:
        s.reader = asyncio.create_task(s.read())
    warm = 3.0
    start = time.monotonic()
    cpu0 = None
    spy = None

    async def sample_cpu() -> None:
        nonlocal cpu0, spy
        await asyncio.sleep(warm)
        cpu0 = (time.monotonic(), engine.cpu_s())
        if profile:
            spy = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "1",
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(engine.proc.pid),
                    "--duration",
                    str(int(seconds)),
                    "--format",
                    "flamegraph" if profile.endswith(".svg") else "raw",
                    "--output",
                    profile,
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    cpu_task = asyncio.create_task(sample_cpu())
    await ticker(sessions, figs, start + warm + seconds, start + warm)
    await cpu_task
    assert cpu0 is not None
    cpu = (engine.cpu_s() - cpu0[1]) / (time.monotonic() - cpu0[0]) * 100
    # the engine may be behind (a shared machine starves it): let it catch up on
    # what was sent, then charge it all the CPU it took for that audio
    await asyncio.gather(*(s.flush() for s in sessions))
    audio_s = (figs.sent + figs.dropped) * CHUNK_MS / 1000
    # net of what the engine spends with no session at all (its tickers)
    used = engine.cpu_s() - cpu0[1] - engine.idle_cpu * (time.monotonic() - cpu0[0])
    per_session = used / audio_s if audio_s else float("nan")
    if spy is not None:
        spy.wait()
    for s in sessions:
        if s.reader is not None:
            s.reader.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"n": n, "admitted": len(sockets), "cpu": cpu, "per_session": per_session, "figs": figs}


async def idle_rss(engine: Engine, n: int) -> float:
    """KiB per idle session: RSS with ``n`` connected, silent sessions minus without."""
    figs = Figures()
    await asyncio.sleep(1.0)
    before = engine.rss_kib()
    sockets = await connect_all(engine, n, figs)
    await asyncio.sleep(1.0)
    after = engine.rss_kib()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return (after - before) / max(1, len(sockets))


def room_noise(dbfs: float | None) -> list[bytes]:
    """Chunks of a quiet room (Gaussian noise at ``dbfs`` RMS), or digital zeros.

    Why not zeros by default: a real microphone's silence is noise, and the
    engine's energy gate (audio/gate.py) must learn that floor to skip it; an
    all-zero stream would flatter it."""
    if dbfs is None:
        return [ws_binary_frame(bytes(CHUNK_BYTES))]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, CHUNK_BYTES // 2)) * 32768 * 10 ** (dbfs / 20)
    return [ws_binary_frame(row.astype("<i2").tobytes()) for row in np.round(x)]


def speech_pcm(text: str) -> bytes:
    from tests.speech import espeak_speech, trim

    pcm = trim(espeak_speech(text))
    pad = -len(pcm) % (CHUNK_BYTES // 2)
    return np.concatenate([pcm, np.zeros(pad, np.int16)]).astype("<i2").tobytes()


def print_level(r: dict[str, Any]) -> None:
    f: Figures = r["figs"]
    errs = {e: f.errors.count(e) for e in set(f.errors)}
    print(
        f"N={r['n']:4d} admitted {r['admitted']:4d}  engine CPU {r['cpu']:5.1f} %  "
        f"({r['per_session'] * 100:.3f} % of a core per real-time session net of idle, "
        f"i.e. {1 / r['per_session']:.0f} sessions/core)  "
        f"ping p50 {pct(f.ping_ms, 50):7.1f} p99 {pct(f.ping_ms, 99):7.1f} ms "
        f"(n={len(f.ping_ms)})  "
        f"dropped {f.dropped}/{f.sent + f.dropped}  gen lag p99 {pct(f.tick_lag_ms, 99):5.1f} ms",
        flush=True,
    )
    print(
        f"        first audio p50 {pct(f.first_audio_ms, 50):7.0f} "
        f"p95 {pct(f.first_audio_ms, 95):7.0f} ms "
        f"(n={len(f.first_audio_ms)})  barge-in p50 {pct(f.barge_ms, 50):6.0f} p95 "
        f"{pct(f.barge_ms, 95):6.0f} ms (n={len(f.barge_ms)})  mcp answered {f.mcp}  "
        f"refused {f.refused}  errors {errs or '-'}",
        flush=True,
    )


async def main(args: argparse.Namespace) -> None:
    import tempfile

    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})
    doubles = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, __file__, "_doubles"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert doubles.stdout is not None
    urls = json.loads(doubles.stdout.readline())
    utter, barge = chunked(speech_pcm("list the files please")), chunked(speech_pcm("no, stop"))
    SILENCE[:] = room_noise(None if args.room_dbfs >= 0 else args.room_dbfs)
    global SPEECH
    SPEECH = args.speech
    with tempfile.TemporaryDirectory() as home:
        engine = start_engine(
            args.mode, urls, Path(home), args.admission, args.engine_log, args.loop
        )
        try:
            print(
                f"mode {args.mode}: engine pid {engine.proc.pid} on core 0 ({args.loop}), load on "
                "core 1; "
                f"{args.seconds:.0f} s per level after 3 s warm-up; machine load "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
            await asyncio.sleep(1.0)
            t0, c0 = time.monotonic(), engine.cpu_s()
            await asyncio.sleep(5.0)
            engine.idle_cpu = (engine.cpu_s() - c0) / (time.monotonic() - t0)
            print(
                f"engine CPU with no session: {engine.idle_cpu * 100:.2f} % of a core", flush=True
            )
            rss = await idle_rss(engine, args.idle)
            print(f"RSS per idle session: {rss:.0f} KiB (over {args.idle} sessions)", flush=True)
            best = 0
            for i, n in enumerate(args.sessions):
                prof = args.profile if args.profile and i == len(args.sessions) - 1 else None
                r = await run_level(engine, n, args.seconds, utter, barge, prof)
                print_level(r)
                f: Figures = r["figs"]
                if pct(f.ping_ms, 99) < 32 and f.dropped == 0 and f.refused == 0:
                    best = max(best, r["admitted"])
                await asyncio.sleep(2.0)
            print(
                f"sessions per core at p99 ping < 32 ms and 0 dropped: {best} (of the levels tried)"
            )
        finally:
            engine.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                engine.proc.wait(15)
            if engine.proc.poll() is None:
                engine.proc.kill()
            doubles.stdin.close()  # type: ignore[union-attr]
            doubles.wait(10)


if __name__ == "__main__":
    if sys.argv[1:] == ["_doubles"]:
        asyncio.run(run_doubles())
        raise SystemExit(0)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["remote", "embedded"], default="remote")
    p.add_argument(
        "--sessions", type=lambda s: [int(x) for x in s.split(",")], default=[50, 100, 200]
    )
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per level")
    p.add_argument("--idle", type=int, default=100, help="idle sessions for the RSS figure")
    p.add_argument(
        "--room-dbfs",
        type=float,
        default=-70.0,
        help="level of the room noise between utterances (dBFS RMS; 0: digital zeros)",
    )
    p.add_argument(
        "--admission",
        choices=["off", "measured"],
        default="off",
        help="the engine's admission control: off (default) measures the cost of every "
        "session asked for; measured shows where the engine itself would refuse",
    )
    p.add_argument(
        "--profile",
        metavar="OUT",
        help="py-spy the engine during the last level (OUT.svg: a flame graph; else raw)",
    )
    p.add_argument(
        "--no-speech",
        dest="speech",
        action="store_false",
        help="room noise only, no utterances: the engine's per-frame cost alone",
    )
    p.add_argument("--engine-log", metavar="FILE", help="write the engine's log to FILE")
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default=DEFAULT_LOOP,
        help=f"the engine's event loop (voco serve --loop; default: {DEFAULT_LOOP}, its own)",
    )
    asyncio.run(main(p.parse_args()))
