"""A speculative request (sent during the user's pause, before the turn is
confirmed) runs only what needs nobody's approval: anything the policy would
ask about is refused without asking, not run, and audited as such."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from voco.local.sandbox import AuditLog, Sandbox
from voco.protocol.messages import McpRequest, McpResponse

from .helpers import Tree


class Asked:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, _request: McpRequest, reason: str) -> bool:
        self.reasons.append(reason)
        return True  # a person who would say yes: the refusal must not come from them


def spec_call(sb: Sandbox, action: str, **payload: Any) -> McpResponse:
    req = McpRequest(id=uuid.uuid4().hex[:12], action=action, payload=payload, speculative=True)
    return sb.handle(req)


def test_a_speculative_write_is_neither_asked_about_nor_run(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    asked = Asked()
    sb = make_sandbox(asked)
    resp = spec_call(sb, "write_file", path="new.txt", content="hi")
    assert resp.status == "rejected" and resp.code == "needs_confirmed_turn", resp
    assert asked.reasons == [] and not (tree.root / "new.txt").exists()


def test_a_speculative_read_of_a_secret_looking_file_is_refused_unasked(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    (tree.root / ".env").write_text("KEY=hunter2\n")
    asked = Asked()
    sb = make_sandbox(asked)
    resp = spec_call(sb, "read_file", path=".env")
    assert resp.code == "needs_confirmed_turn" and asked.reasons == []
    assert "hunter2" not in resp.model_dump_json()
    # the same request, confirmed, is asked about as always
    sure = sb.handle(McpRequest(id="c1", action="read_file", payload={"path": ".env"}))
    assert sure.status == "success" and len(asked.reasons) == 1


def test_a_speculative_plain_read_runs_and_the_audit_says_what_happened(
    tree: Tree, make_sandbox: Callable[..., Sandbox], audit: AuditLog
) -> None:
    sb = make_sandbox(Asked(), audit=audit)
    ok = spec_call(sb, "read_file", path="inside.txt")
    assert ok.status == "success" and "INSIDE" in str(ok.result)
    refused = spec_call(sb, "write_file", path="x.txt", content="x")
    assert refused.code == "needs_confirmed_turn"
    audit.close()
    text = audit.path.read_text()
    assert '"by": "speculative"' in text or '"by":"speculative"' in text
