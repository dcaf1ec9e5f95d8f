"""Make every ``mcp.response`` fit in one text frame (protocol §7: 1 MiB).

Why measured on the *serialised* size: the per-action caps (1 MiB read, 1 MiB
per output stream) are in bytes of content, but JSON escaping grows a control
character sixfold and base64 grows binary by a third, so a capped result can
still be several MiB on the wire — and the engine closes the session (1009)
on a frame over 1 MiB. Actions cut their own content to a JSON budget (so
``read_file`` can say exactly how much it returned); :func:`fit_response` is
the final guard on the whole message, trimming the bulk fields and setting
``truncated: true``.
"""

from __future__ import annotations

from typing import Any

from voco.protocol.connection import MAX_TEXT_FRAME
from voco.protocol.messages import McpResponse

FRAME_LIMIT = MAX_TEXT_FRAME - 1024  # bytes of one serialised response, envelope included
CONTENT_BUDGET = MAX_TEXT_FRAME - 16 * 1024  # bytes of JSON for an action's bulk content

_SIX = bytes(c for c in range(32) if c not in (8, 9, 10, 12, 13))  # become \\u00XX
_TWO = b'"\\\b\t\n\f\r'  # become a two-character escape


def json_cost(data: bytes) -> int:
    """Bytes ``data`` (UTF-8) takes inside a JSON string, quotes excluded."""
    n6 = len(data) - len(data.translate(None, _SIX))
    n2 = len(data) - len(data.translate(None, _TWO))
    return len(data) + 5 * n6 + n2


def fitting_prefix(data: bytes, budget: int) -> int:
    """Length of the longest prefix of UTF-8 ``data`` costing ≤ ``budget``, cut at a
    character boundary."""
    if json_cost(data) <= budget:
        return len(data)
    lo, hi = 0, min(len(data), budget)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if json_cost(data[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    while 0 < lo < len(data) and (data[lo] & 0xC0) == 0x80:
        lo -= 1
    return lo


def cut_text(text: str, budget: int) -> tuple[str, bool]:
    raw = text.encode("utf-8", "surrogatepass")
    n = fitting_prefix(raw, budget)
    if n == len(raw):
        return text, False
    return raw[:n].decode("utf-8", "replace"), True


def wire_size(response: McpResponse) -> int:
    return len(response.to_json().encode("utf-8", "surrogatepass"))


_STRINGS = ("content", "content_b64", "stdout", "stderr")
_LISTS = ("matches", "entries")


def fit_response(response: McpResponse, limit: int = FRAME_LIMIT) -> McpResponse:
    """``response`` if it fits, else a copy with bulk fields trimmed and
    ``truncated: true``; an answer that still cannot fit becomes ``too_large``."""
    size = wire_size(response)
    if size <= limit:
        return response
    result = dict(response.result) if isinstance(response.result, dict) else None
    for _ in range(64):
        if result is None:
            break
        over = size - limit
        if not _shrink(result, over):
            break
        result["truncated"] = True
        response = response.model_copy(update={"result": result})
        size = wire_size(response)
        if size <= limit:
            return response
    return McpResponse(
        id=response.id,
        status="error",
        code="too_large",
        error="the answer does not fit in one message",
        audit_hash=response.audit_hash,
    )


def _shrink(result: dict[str, Any], over: int) -> bool:
    """Remove at least ``over`` bytes' worth from the largest bulk field."""
    best: tuple[int, str] | None = None
    for key in _STRINGS:
        value = result.get(key)
        if isinstance(value, str) and value:
            cost = json_cost(value.encode("utf-8", "surrogatepass"))
            if best is None or cost > best[0]:
                best = (cost, key)
    if best is not None and best[0] > over // 2:
        cost, key = best
        value = result[key]
        if key == "content_b64":
            keep = max(0, (len(value) - over - 4) // 4 * 4)
            result[key] = value[:keep]
        else:
            result[key], _ = cut_text(value, max(0, cost - over - 64))
        return True
    for key in _LISTS:
        items = result.get(key)
        if isinstance(items, list) and items:
            result[key] = items[: len(items) // 2]
            return True
    if best is not None:
        result[best[1]] = ""
        return True
    return False
