"""Who says yes to a high-risk call made through ``voco mcp``.

stdin/stdout carry the MCP protocol, so the question cannot go there. In
order of preference:

1. **The MCP client**, per call, through *elicitation* (a form with one
   yes/no field) when the client declared the capability — Claude Desktop,
   Cursor and the official SDK client can show it to their user.
2. **The controlling terminal** (``/dev/tty``), opened in binary mode (a
   terminal is not seekable, so text-mode ``r+`` raises), with the reason and
   the complete action shown through the shared display sanitiser
   (``sandbox/display.py``), so an engine- or model-supplied string cannot
   paint a different prompt over the real one.
3. **Nobody**: the call is refused by policy, with a reason that says why.

The approver runs in the worker thread that executes the sandbox call; the
per-call MCP context reaches it through a thread-local set by the server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from voco.local.sandbox.display import describe_action, escape
from voco.protocol.messages import McpRequest

APPROVE_MODES = ("ask", "deny", "all")


def describe(request: McpRequest) -> str:
    """The complete, escaped action, one indented line per field."""
    return describe_action(request.action, request.payload).replace("\n", "\n    ")


def prompt_text(request: McpRequest, reason: str) -> str:
    return (
        f"\n[voco mcp] {escape(request.action)} needs approval: {escape(reason)}\n"
        f"    {describe(request)}\n"
        "  approve? [y/N] "
    )


class TtyApprover:
    """Asks yes/no on the controlling terminal; one question at a time."""

    def __init__(self, tty_path: str = "/dev/tty") -> None:
        self._lock = threading.Lock()
        self._tty_path = tty_path

    def available(self) -> bool:
        try:
            fd = os.open(self._tty_path, os.O_RDWR | os.O_NOCTTY)
        except OSError:
            return False
        os.close(fd)
        return True

    def __call__(self, request: McpRequest, reason: str) -> bool:
        with self._lock:
            try:
                with open(self._tty_path, "r+b", buffering=0) as tty:
                    tty.write(prompt_text(request, reason).encode("utf-8", "replace"))
                    answer = tty.readline(64)
            except OSError:
                return False  # no terminal after all: nobody to ask, so no
        return answer.strip().lower() in (b"y", b"yes")


# The current call's elicitation hook, set by the server in the worker thread.
Elicit = Callable[[str], "bool | None"]
_current = threading.local()


def set_call_elicitor(elicit: Elicit | None) -> None:
    _current.elicit = elicit


class AskApprover:
    """``--approve ask``: elicitation if the client can, else the terminal, else no.

    A refusal for lack of anyone to ask is recorded with that reason (see
    :attr:`last_refusal`) so the server can say *why* in the tool error.
    """

    def __init__(self, tty: TtyApprover | None = None) -> None:
        self._tty = tty or TtyApprover()
        self.no_one_to_ask = threading.local()

    def __call__(self, request: McpRequest, reason: str) -> bool:
        self.no_one_to_ask.value = False
        elicit: Elicit | None = getattr(_current, "elicit", None)
        if elicit is not None:
            answer = elicit(elicitation_message(request, reason))
            if answer is not None:
                return answer
        if self._tty.available():
            return self._tty(request, reason)
        self.no_one_to_ask.value = True
        return False

    def refused_for_lack_of_asker(self) -> bool:
        return bool(getattr(self.no_one_to_ask, "value", False))


def elicitation_message(request: McpRequest, reason: str) -> str:
    return (
        f"Voco: {escape(request.action)} needs your approval ({escape(reason)}).\n"
        + describe_action(request.action, request.payload)
    )


def make_approver(approve: str) -> Callable[[McpRequest, str], bool] | None:
    if approve not in APPROVE_MODES:
        raise ValueError(f"--approve must be one of {', '.join(APPROVE_MODES)}")
    if approve == "deny":
        return None
    if approve == "all":
        return _approve_all
    return AskApprover()


def _approve_all(_request: McpRequest, _reason: str) -> bool:
    return True
