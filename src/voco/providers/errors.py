"""Shared mapping of transport failures to :class:`ProviderError`.

Why here: every cloud provider fails in the same few ways (connection refused,
timeout, an HTTP error status, a stream that stops half-way), and the session
only needs two facts about each: a readable message and whether trying again (or
a fallback provider) may help. Keeping the rules in one place makes the
``retryable`` flag mean the same thing for every vendor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from voco.providers.base import ProviderError

# Statuses that say "not now" rather than "never": timeouts, conflicts, rate
# limits and every server-side failure (Anthropic's 529 "overloaded" included).
_RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def retryable_status(status: int | None) -> bool:
    """Whether an HTTP-style status code describes a transient failure.

    ``None`` (no status at all, e.g. a dropped connection) counts as transient.
    """
    if status is None:
        return True
    return status >= 500 or status in _RETRYABLE_STATUSES


def stream_interrupted(provider: str, exc: BaseException) -> ProviderError:
    """Map a transport error raised while reading an HTTP response stream.

    The SDKs raise their HTTP library's own exceptions here (not their wrapped
    ``APIConnectionError``), so they are recognised by kind rather than by
    import: a read timeout, or the peer closing mid-body.
    """
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return ProviderError(provider, "stream timed out waiting for data")
    return ProviderError(provider, f"stream interrupted: {type(exc).__name__}: {exc}")


T = TypeVar("T")


class _ClosableStream(Protocol):
    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def close(self) -> None: ...


async def relay_sdk_stream(
    provider: str,
    stream: _ClosableStream,
    feed: Callable[[Any], Iterable[T]],
    *,
    sdk_error: type[Exception],
    connection_error: type[Exception],
    map_error: Callable[[Any], ProviderError],
) -> AsyncGenerator[T, None]:
    """Relay an SDK's streamed response through ``feed``, mapping every failure.

    The same for each HTTP SDK: its own errors go through ``map_error``; a
    wrapped connection error or the HTTP library's raw error mid-body means the
    stream broke. The response is always closed, which is how the API learns we
    stopped listening (barge-in) and abandons generation server-side. Consume it
    under ``contextlib.aclosing`` so a cancelled consumer closes it at once.
    """
    try:
        async for item in stream:
            for out in feed(item):
                yield out
    except ProviderError:
        raise
    except connection_error as exc:  # some SDKs wrap mid-stream drops
        raise stream_interrupted(provider, exc.__cause__ or exc) from exc
    except sdk_error as exc:
        raise map_error(exc) from exc
    except Exception as exc:  # the HTTP library's errors: the stream broke mid-way
        raise stream_interrupted(provider, exc) from exc
    finally:
        await stream.close()


def websocket_url(base_url: str, path: str) -> str:
    """Join ``base_url`` (``wss://``, ``ws://``, ``https://`` or ``http://``) and ``path``.

    Env vars and configs tend to hold HTTP URLs for a vendor; the WebSocket
    endpoint lives on the same host, so the scheme is translated rather than
    rejected.
    """
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket/HTTP URL: {base_url!r}")
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((scheme, parts.netloc, joined, "", ""))


def websocket_connect_error(provider: str, exc: BaseException) -> ProviderError:
    """Map a failure of ``websockets.connect`` (handshake included)."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace")[:200] if exc.response.body else ""
        detail = f": {body}" if body else ""
        return ProviderError(
            provider,
            f"handshake rejected with HTTP {status}{detail}",
            retryable=retryable_status(status),
        )
    if isinstance(exc, InvalidURI):
        return ProviderError(provider, f"bad URL: {exc}", retryable=False)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ProviderError(provider, "connect timed out")
    if isinstance(exc, InvalidHandshake):
        return ProviderError(provider, f"handshake failed: {exc}")
    if isinstance(exc, OSError):
        return ProviderError(provider, f"connect failed: {exc.strerror or exc}")
    return ProviderError(provider, f"connect failed: {type(exc).__name__}: {exc}")


def websocket_closed_error(
    provider: str, exc: ConnectionClosed, *, fatal_codes: frozenset[int] = frozenset()
) -> ProviderError:
    """Map an unexpected close of an established WebSocket.

    ``fatal_codes`` are close codes the vendor uses for "your request is wrong"
    (retrying the same thing cannot help); everything else, including a close
    without any close frame (the TCP connection simply dropped), is retryable.
    """
    rcvd = exc.rcvd
    if rcvd is None:
        return ProviderError(provider, "connection dropped")
    reason = f" ({rcvd.reason})" if rcvd.reason else ""
    return ProviderError(
        provider,
        f"connection closed by server: code {rcvd.code}{reason}",
        retryable=rcvd.code not in fatal_codes,
    )
