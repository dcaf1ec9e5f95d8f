"""``voco serve --loop``: which event loop an engine process runs on."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from voco.engine.event_loop import DEFAULT_LOOP, LoopUnavailable, loop_factory


def test_the_engine_runs_on_uvloop_unless_told_otherwise() -> None:
    assert DEFAULT_LOOP == "uvloop"
    loop = loop_factory("uvloop")()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    loop = loop_factory("asyncio")()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert isinstance(loop, asyncio.BaseEventLoop)
    finally:
        loop.close()


def test_uvloop_missing_is_a_clear_error_not_a_quiet_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` meets when absent
    with pytest.raises(LoopUnavailable, match=r"not installed.*--loop asyncio"):
        loop_factory("uvloop")
    assert loop_factory("asyncio") is asyncio.new_event_loop


def test_an_unknown_loop_names_the_choices() -> None:
    with pytest.raises(LoopUnavailable, match=r"one of uvloop, asyncio, got 'trio'"):
        loop_factory("trio")
