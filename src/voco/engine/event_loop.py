"""Which event loop a ``voco serve`` process runs on: uvloop unless told.

Why uvloop: an engine at load is mostly its event loop — every 32 ms audio
frame of every session is a socket read, a callback and often a write. uvloop
(libuv, the loop uvicorn's ``standard`` install picks) does that bookkeeping
in C. Measured with ``bench/bench_load.py --loop`` (engine pinned to one
core): 200 sessions of room noise cost ~16 % of the core on uvloop against
~18 % on asyncio's own loop; with 90 speaking sessions the two were within the
machine's noise (~72–75 %), the turns' work not being the loop's.

``asyncio`` stays selectable (``--loop asyncio``): it is the reference the
tests' in-process servers run on, and the way to rule the loop out when
something misbehaves. Asking for uvloop where it is not installed is a usage
error that says so, never a silent switch to the other loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

LOOPS = ("uvloop", "asyncio")
DEFAULT_LOOP = "uvloop"


class LoopUnavailable(RuntimeError):
    """The event loop asked for cannot run here; the message says what to do."""


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function that makes a new loop of kind ``name`` (one of :data:`LOOPS`)."""
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise LoopUnavailable(
                "--loop uvloop: the 'uvloop' package is not installed (it is a dependency "
                "of voco on Linux and macOS); install it, or run with --loop asyncio"
            ) from None
        return uvloop.new_event_loop
    raise LoopUnavailable(f"--loop must be one of {', '.join(LOOPS)}, got {name!r}")
