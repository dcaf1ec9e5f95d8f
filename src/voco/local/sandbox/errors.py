"""The one exception type the sandbox uses to turn a refusal into a wire answer.

Every check deep inside path resolution, risk classification or execution
raises :class:`ActionError` with the protocol's ``status``/``code`` already
chosen, so :meth:`Sandbox.handle` never has to guess how to map an ``OSError``
and a refusal can never be silently converted into a success.
"""

from __future__ import annotations

from typing import Literal

Status = Literal["error", "rejected"]

# Protocol §5 codes. ``scope_violation`` and the two ``denied_*`` codes are the
# security-relevant ones; the rest describe ordinary failures.
SCOPE_VIOLATION = "scope_violation"
NOT_FOUND = "not_found"
TOO_LARGE = "too_large"
TIMEOUT = "timeout"
INVALID_REQUEST = "invalid_request"
UNKNOWN_ACTION = "unknown_action"
INTERNAL = "internal"
DENIED_BY_USER = "denied_by_user"
DENIED_BY_POLICY = "denied_by_policy"
# a speculative request (sent before the user's turn was confirmed) that would
# need approval: refused without asking; the confirmed turn sends it again
NEEDS_CONFIRMED_TURN = "needs_confirmed_turn"


class ActionError(Exception):
    """A request the sandbox refuses or cannot complete.

    ``result`` carries a partial result when the protocol wants one alongside
    the error (a timed-out command still reports its output and ``timed_out``).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: Status = "error",
        result: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status: Status = status
        self.result = result


def scope(message: str) -> ActionError:
    """Shorthand for the most common refusal: the target is outside every root."""
    return ActionError(SCOPE_VIOLATION, message)


def invalid(message: str) -> ActionError:
    """Shorthand for a malformed payload."""
    return ActionError(INVALID_REQUEST, message)


class SetupError(ValueError):
    """The sandbox cannot start as configured; the message is one line for the user.

    Raised at construction (never from ``handle``), so ``voco talk/local/up/mcp``
    can print it and exit instead of running with an unsafe setup.
    """


class RootRefused(SetupError):
    """A root that does not exist, or that would expose secrets ($HOME, Voco's state)."""


class AuditTampered(SetupError):
    """The audit log does not match its head anchor or key: refuse to append to it."""
