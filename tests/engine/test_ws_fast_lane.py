"""The WebSocket fast lane for audio (engine/ws_protocol.py), sans-I/O: bytes
fed into the real protocol object through a fake transport, frames built and
read by the websockets library's own client protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Close, Opcode
from websockets.uri import parse_uri

from voco.engine.server import uvicorn_options
from voco.engine.ws_protocol import AudioLane, BoundedCloseProtocol, audio_lane


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.reading = True
        self.closed = False

    def write(self, data: Any) -> None:
        self.out += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


class App:
    """Behaves like the engine's reader: accepts frames on the lane only while it
    waits in ``receive()``; a text frame ``hold`` keeps it busy until released."""

    def __init__(self, sink_ok: bool = True) -> None:
        self.got: list[tuple[str, Any, str]] = []  # (kind, data, how it came)
        self.lane: AudioLane | None = None
        self.reading = False
        self.handling = asyncio.Event()
        self.release = asyncio.Event()
        self.sink_ok = sink_ok
        self.close_now = asyncio.Event()

    def sink(self, data: bytes) -> bool:
        if not self.reading or not self.sink_ok:
            return False
        self.got.append(("bytes", bytes(data), "lane"))
        return True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        self.lane = audio_lane(scope)
        assert self.lane is not None
        self.lane.attach(self.sink)
        while True:
            self.reading = True
            msg = await receive()
            self.reading = False
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                self.got.append(("text", msg["text"], "queue"))
                if msg["text"] == "hold":
                    self.handling.set()
                    await self.release.wait()
                if msg["text"] == "close":
                    await send({"type": "websocket.close", "code": 1000})
            elif msg.get("bytes") is not None:
                self.got.append(("bytes", msg["bytes"], "queue"))


class Wire:
    def __init__(self, app: App, **opts: Any) -> None:
        config = uvicorn.Config(app, **{**uvicorn_options(), "ws_ping_interval": None, **opts})
        config.load()
        self.proto = BoundedCloseProtocol(config, ServerState(), {})
        self.t = FakeTransport()
        self.proto.connection_made(self.t)
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/v1/session"))
        self.client.send_request(self.client.connect())
        self._push()

    def _push(self) -> None:
        self.proto.data_received(b"".join(self.client.data_to_send()))

    def binary(self, data: bytes) -> None:
        self.client.send_binary(data)
        self._push()

    def text(self, data: str) -> None:
        self.client.send_text(data.encode())
        self._push()

    def server_events(self) -> list[Any]:
        self.client.receive_data(bytes(self.t.out))
        self.t.out.clear()
        return list(self.client.events_received())


async def until(cond: Any) -> None:
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def opened(app: App, **opts: Any) -> Wire:
    w = Wire(app, **opts)
    await until(lambda: app.lane is not None and app.reading)
    w.server_events()  # the 101 response
    return w


async def test_binary_frames_take_the_lane_and_keep_their_order_around_text() -> None:
    app = App()
    w = await opened(app)
    w.binary(b"\x01\x00")  # the app waits in receive(): straight to the sink
    assert app.got == [("bytes", b"\x01\x00", "lane")]
    w.text("hold")  # a text frame: the ordinary queue, and it keeps the app busy
    await app.handling.wait()
    w.binary(b"\x02\x00")  # the text frame is still being handled: these queue behind it
    w.binary(b"\x03\x00")
    assert [d for _, d, _ in app.got] == [b"\x01\x00", "hold"]
    w.text("after")
    w.binary(b"\x04\x00")  # a text frame waits in the queue: behind it too
    app.release.set()
    await until(lambda: len(app.got) == 6 and app.reading)
    w.binary(b"\x05\x00")  # caught up: the lane again
    assert app.got == [
        ("bytes", b"\x01\x00", "lane"),
        ("text", "hold", "queue"),
        ("bytes", b"\x02\x00", "queue"),
        ("bytes", b"\x03\x00", "queue"),
        ("text", "after", "queue"),
        ("bytes", b"\x04\x00", "queue"),
        ("bytes", b"\x05\x00", "lane"),
    ]


async def test_a_frame_the_sink_refuses_takes_the_ordinary_path() -> None:
    app = App(sink_ok=False)
    w = await opened(app)
    w.binary(b"\x01\x00\x02")
    await until(lambda: len(app.got) == 1)
    assert app.got == [("bytes", b"\x01\x00\x02", "queue")]


async def test_a_fragmented_message_is_joined_on_the_ordinary_path() -> None:
    app = App()
    w = await opened(app)
    w.client.send_binary(b"\x01\x00", fin=False)
    w.client.send_continuation(b"\x02\x00", fin=True)
    w._push()
    await until(lambda: len(app.got) == 1)
    assert app.got == [("bytes", b"\x01\x00\x02\x00", "queue")]


async def test_the_lane_holds_reading_until_released_even_across_queued_messages() -> None:
    app = App()
    w = await opened(app)
    assert app.lane is not None
    app.lane.hold(True)
    assert not w.t.reading
    w.text("x")  # queued, then taken by the app: uvicorn would resume reading now
    await until(lambda: len(app.got) == 1 and app.reading)
    assert not w.t.reading  # …but the lane still holds it
    app.lane.hold(False)
    assert w.t.reading
    app.lane.hold(True)
    w.text("y")  # the ASGI queue pauses too; releasing the lane alone must not resume
    app.lane.hold(False)
    await until(lambda: len(app.got) == 2 and app.reading)
    assert w.t.reading


async def test_an_oversized_frame_closes_1009_and_never_reaches_the_sink() -> None:
    app = App()
    w = await opened(app, ws_max_size=1024)
    w.binary(bytes(2048))
    closes = [e for e in w.server_events() if getattr(e, "opcode", None) is Opcode.CLOSE]
    assert [Close.parse(c.data).code for c in closes] == [1009]
    assert app.got == []


async def test_after_the_app_closed_no_frame_reaches_the_sink() -> None:
    app = App()
    w = await opened(app)
    w.text("close")
    await until(lambda: w.proto.close_sent)
    app.reading = True  # a sink that would take it: the protocol must not offer it
    w.binary(b"\x01\x00")
    assert app.got == [("text", "close", "queue")]


async def test_the_lane_is_off_once_the_connection_is_lost() -> None:
    app = App()
    w = await opened(app)
    w.proto.connection_lost(None)
    assert w.proto.sink is None
    assert app.lane is not None
    app.lane.wake()  # nothing to wake: no error either
    app.lane.hold(True)  # nor does a hold touch a dead transport
    assert w.t.reading


# ------------------------------------------------- the frame parser bypass


async def test_a_lone_binary_frame_skips_the_parser_and_arrives_unmasked() -> None:
    app = App()
    w = await opened(app)
    parsed: list[Any] = []
    real = w.proto.handle_events
    w.proto.handle_events = lambda: (parsed.append(1), real())[1]  # type: ignore[method-assign]
    payload = bytes(range(256)) * 4  # 1024 bytes, the usual 32 ms frame
    w.binary(payload)  # the client masks it with a random key
    assert app.got == [("bytes", payload, "lane")]
    assert parsed == []  # the library's parser never ran for it
    w.text("t")  # …and is still in step: the next frame parses normally
    await until(lambda: len(app.got) == 2 and app.reading)
    w.binary(b"\x07\x00")
    assert app.got[1:] == [("text", "t", "queue"), ("bytes", b"\x07\x00", "lane")]


async def test_a_burst_in_one_chunk_keeps_its_order_and_a_split_frame_is_parsed() -> None:
    app = App()
    w = await opened(app)
    parsed: list[Any] = []
    real = w.proto.handle_events
    w.proto.handle_events = lambda: (parsed.append(1), real())[1]  # type: ignore[method-assign]
    w.client.send_binary(b"\x01\x00")
    w.client.send_binary(b"\x02\x00")
    w.client.send_text(b"t")
    w.client.send_binary(b"\x03\x00")
    w._push()  # a reader that fell behind: four frames in one data_received
    assert parsed == [1]  # once, for the rest of the chunk from the text frame on
    await until(lambda: len(app.got) == 4 and app.reading)
    assert app.got == [
        ("bytes", b"\x01\x00", "lane"),
        ("bytes", b"\x02\x00", "lane"),
        ("text", "t", "queue"),
        ("bytes", b"\x03\x00", "queue"),  # behind the text frame
    ]
    whole = bytearray()
    w.client.send_binary(b"\x04\x00\x05\x00")
    for chunk in w.client.data_to_send():
        whole += chunk
    w.proto.data_received(bytes(whole[:3]))  # a frame cut in two
    w.proto.data_received(bytes(whole[3:]))
    assert app.got[4:] == [("bytes", b"\x04\x00\x05\x00", "lane")]  # via the parser


async def test_a_frame_after_half_a_header_is_not_mistaken_for_a_boundary() -> None:
    """The parser consumed the header of a frame (its buffer is then empty): a
    next chunk that looks exactly like a whole frame is that frame's rest."""
    from websockets.speedups import apply_mask

    app = App()
    w = await opened(app)
    payload = b"\x05\x00" * 3
    # mask key chosen so that key + payload read as a 4-byte frame of their own:
    # 0x82 (FIN, binary), 0x84 (masked, 4 bytes)
    key = b"\x82\x84\x00\x00"
    frame = b"\x82\x86" + key + apply_mask(payload, key)
    w.proto.data_received(frame[:2])  # just the header: the parser takes it
    w.proto.data_received(frame[2:])  # key + payload: no frame of its own
    await until(lambda: len(app.got) == 1)
    # parsed by the library (then offered to the sink): the whole payload, not
    # the 4 bytes a misread "frame" would have unmasked
    assert app.got == [("bytes", payload, "lane")]


async def test_an_unmasked_client_frame_is_refused_by_the_library() -> None:
    app = App()
    w = await opened(app)
    w.proto.data_received(b"\x82\x02\x01\x00")  # unmasked: RFC 6455 says close 1002
    closes = [e for e in w.server_events() if getattr(e, "opcode", None) is Opcode.CLOSE]
    assert [Close.parse(c.data).code for c in closes] == [1002]
    assert app.got == []
