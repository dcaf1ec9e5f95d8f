"""CPU per received audio frame in the WebSocket layer: uvicorn's path vs the fast lane.

    uv run python bench/bench_ws_lane.py [--frames 20000]

No assertions: figures to read. Sans-I/O, so it is much less sensitive to a
loaded machine than bench_load.py: the real :class:`BoundedCloseProtocol` is fed
1 024-byte masked binary frames (built by the websockets client protocol)
through a fake transport (tests/engine/test_ws_fast_lane.py), and the CPU time
of this process (``time.process_time``) is divided by the frames delivered.

* "uvicorn path": the sink refuses, so each frame is parsed by the websockets
  library, put on the ASGI queue (reading paused), and taken by the app's
  ``receive()`` in a task wake-up — what every frame cost before issue 11 §1
  (Starlette's wrapper and the engine's reader loop come on top of it);
* "fast lane": the frame is unmasked and handed to the sink from
  ``data_received`` (engine/ws_protocol.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def per_frame_us(lane: bool, n: int) -> float:
    from tests.engine.test_ws_fast_lane import App, opened, until

    app = App(sink_ok=lane)
    w = await opened(app)
    w.client.send_binary(bytes(1024))
    frame = b"".join(w.client.data_to_send())
    before = len(app.got)
    t0 = time.process_time()
    for _ in range(n):
        w.proto.data_received(frame)
        if not lane:  # the app takes it from the queue before the next one
            await until(lambda: app.reading and w.proto.queue.empty())
    dt = time.process_time() - t0
    assert len(app.got) - before == n
    return dt / n * 1e6


async def main(frames: int) -> None:
    for lane in (False, True, False, True):
        name = "fast lane   " if lane else "uvicorn path"
        print(f"{name}: {await per_frame_us(lane, frames):6.1f} µs CPU per frame", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20_000)
    asyncio.run(main(p.parse_args().frames))
