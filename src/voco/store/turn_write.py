"""A turn's record — turn row, tool actions, usage, audit rows — as one statement.

Why one statement: the record used to be a statement per row (the turn, each
tool action, each of ~6 usage rows, each audit row) in one pipelined
transaction. One round trip, but each statement is its own Bind/Execute, its
own executor start-up and RLS policy evaluation on the server and its own
psycopg bookkeeping in the engine: with billing on, the usage rows alone
added ~4.5 ms to a turn. Here every row set is one JSON parameter expanded by
``jsonb_to_recordset`` in a data-modifying CTE, and the audit rows are the
statement's result, appended by ``public.audit_append`` in their order. The
text never changes, so it is prepared once per connection and runs on a
generic plan (no re-planning of the RLS policies per turn).

Nothing about the guarantees changes: it runs inside
:func:`~voco.store.db.as_user_pipelined` (``authenticated`` with the caller's
claims; every row still passes its table's RLS ``WITH CHECK``), the audit rows
commit in the same transaction as the rows they record, each through
``audit_append`` (the per-org advisory lock, the hash chain), and usage ids are
deterministic with ``on conflict do nothing`` (a retried record bills nothing
twice). Data-modifying CTEs all run to completion even though the final
SELECT does not read them; none of them reads another's rows.

The audit rows' order: ``rows from … with ordinality`` numbers them as given
(tool actions in request order, then the turn), and ``order by`` that number
puts the volatile ``audit_append`` calls above the sort, so they run — and
take their chain sequence numbers — in that order.
"""

from __future__ import annotations

import json
from typing import Any

from voco.billing.aggregate import event_name
from voco.billing.meters import TurnUsage, usage_events
from voco.store.db import Conn
from voco.store.tenancy import TurnRecord

RECORD_TURN_SQL = """\
with turn as (
  insert into public.turns (org_id, thread_id, user_id, session_id, turn_id, response_id,
    transcript, reply, interrupted, heard_text, model, timings)
  values (%(org)s, %(thread)s, auth.uid(), %(session)s, %(turn)s, %(response)s,
    %(transcript)s, %(reply)s, %(interrupted)s, %(heard)s, %(model)s, %(timings)s::jsonb)
), tools as (
  insert into public.tool_actions (org_id, thread_id, user_id, turn_id, request_id, action,
    decision, status, error_code, payload_bytes, payload_sha256, result_bytes, result_sha256)
  select %(org)s, %(thread)s, auth.uid(), %(turn)s, a.request_id, a.action, a.decision,
    a.status, a.error_code, a.payload_bytes, a.payload_sha256, a.result_bytes, a.result_sha256
  from jsonb_to_recordset(%(tools)s::jsonb) as a(request_id text, action text, decision text,
    status text, error_code text, payload_bytes integer, payload_sha256 text,
    result_bytes integer, result_sha256 text)
), usage as (
  insert into public.usage_events (id, org_id, thread_id, turn_id, user_id, meter, model,
    event_name, value)
  select u.id, %(org)s, %(thread)s, %(turn)s, auth.uid(), u.meter, u.model, u.event_name,
    u.value
  from jsonb_to_recordset(%(usage)s::jsonb) as u(id uuid, meter text, model text,
    event_name text, value bigint)
  on conflict (id) do nothing
)
select public.audit_append(%(org)s, e.kind, e.subject, e.detail) as seq
from rows from (jsonb_to_recordset(%(audit)s::jsonb)
  as (kind text, subject text, detail jsonb)) with ordinality as e(kind, subject, detail, n)
order by e.n"""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def record_params(r: TurnRecord, *, org: str, thread_id: str, session_id: str) -> dict[str, Any]:
    """The statement's parameters for ``r``: pure, so tests can check them."""
    usage = TurnUsage(
        r.turn_id, r.user_speech_ms, r.assistant_audio_ms, r.stt_audio_ms,
        r.llm_tokens, len(r.tool_actions),
    )  # fmt: skip
    usage_rows = [
        {"id": str(e.id), "meter": e.meter, "model": e.model,
         "event_name": event_name(e.meter, e.model), "value": e.value}
        for e in usage_events(usage)
    ]  # fmt: skip
    tools = [
        {"request_id": a.request_id, "action": a.action, "decision": a.decision,
         "status": a.status, "error_code": a.error_code, "payload_bytes": a.payload_bytes,
         "payload_sha256": a.payload_sha256, "result_bytes": a.result_bytes,
         "result_sha256": a.result_sha256}
        for a in r.tool_actions
    ]  # fmt: skip
    audit = [
        {"kind": "tool.action", "subject": a.request_id,
         "detail": {"turn": r.turn_id, "action": a.action, "decision": a.decision,
                    "status": a.status, "code": a.error_code,
                    "payload_sha256": a.payload_sha256, "result_sha256": a.result_sha256}}
        for a in r.tool_actions
    ]  # fmt: skip
    audit.append(
        {"kind": "turn", "subject": r.turn_id,
         "detail": {"thread": thread_id, "session": session_id, "interrupted": r.interrupted,
                    "model": r.model, "tools": len(r.tool_actions)}}
    )  # fmt: skip
    return {
        "org": org, "thread": thread_id, "session": session_id, "turn": r.turn_id,
        "response": r.response_id, "transcript": r.transcript, "reply": r.reply,
        "interrupted": r.interrupted, "heard": r.heard_text, "model": r.model,
        "timings": _json(r.timings), "tools": _json(tools), "usage": _json(usage_rows),
        "audit": _json(audit),
    }  # fmt: skip


async def record_turn(
    conn: Conn, r: TurnRecord, *, org: str, thread_id: str, session_id: str
) -> None:
    """Queue the record on ``conn`` (inside ``as_user_pipelined``: nothing is
    fetched; an error surfaces when the pipeline ends, rolling it all back)."""
    await conn.execute(
        RECORD_TURN_SQL, record_params(r, org=org, thread_id=thread_id, session_id=session_id)
    )
