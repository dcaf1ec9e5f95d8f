"""The page's TypeScript types are generated from the pydantic models; this
fails when they drift, and pins the /ui messages' validation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from voco.protocol import messages as m
from voco.protocol import ui_messages as ui
from voco.protocol.schema import wire_schema

ROOT = Path(__file__).resolve().parents[2]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_ts_types", ROOT / "scripts/gen_ts_types.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_typescript_matches_the_models():
    gen = _gen()
    want = gen.generate(wire_schema())
    have = (ROOT / "web/src/lib/wire.gen.ts").read_text()
    assert have == want, "web/src/lib/wire.gen.ts is stale: run scripts/gen_ts_types.py"
    assert gen.main(["--check"]) == 0


def test_a_model_change_shows_up_as_drift():
    gen = _gen()
    schema = wire_schema()
    schema["$defs"]["ApprovalDecision"]["properties"]["note"] = {"type": "string"}
    assert "note?: string;" in gen.generate(schema)
    assert gen.generate(schema) != (ROOT / "web/src/lib/wire.gen.ts").read_text()


def test_the_emitter_refuses_what_it_cannot_type():
    gen = _gen()
    with pytest.raises(ValueError):
        gen.ts_type({"type": "object", "properties": {"x": {"type": "string"}}})
    with pytest.raises(ValueError):
        gen.ts_type({"type": "tuple"})


def test_every_union_member_has_a_type_constant():
    schema = wire_schema()
    for name, refs in schema["x-unions"].items():
        for ref in refs:
            props = schema["$defs"][ref.rsplit("/", 1)[-1]]["properties"]
            assert "const" in props["type"], (name, ref)
    page = {r.rsplit("/", 1)[-1] for r in schema["x-unions"]["PageMessage"]}
    assert "McpRequest" not in page  # never shown to the page


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type":"approval.decision","id":"a","approve":"true"}', "invalid_message"),
        ('{"type":"approval.decision","id":"a","approve":1}', "invalid_message"),
        ('{"type":"settings.update","approve":"all"}', "invalid_message"),
        ('{"type":"settings.update","approve":"yes"}', "invalid_message"),
        ('{"type":"mcp.response","id":"1","status":"success"}', "unknown_type"),
        ('{"type":"thread.history","limit":1000}', "invalid_message"),
        ("[1]", "invalid_message"),
        ("nope", "invalid_json"),
    ],
)
def test_bad_page_frames_are_refused_with_a_code(frame, code):
    with pytest.raises(m.ProtocolError) as e:
        ui.parse_browser(frame)
    assert e.value.code == code


def test_good_page_frames_parse_to_models():
    assert ui.parse_browser('{"type":"approval.decision","id":"a","approve":true}') == (
        ui.ApprovalDecision(id="a", approve=True)
    )
    assert ui.parse_browser('{"type":"settings.update","approve":"deny"}').approve == "deny"
    h = ui.parse_browser('{"type":"thread.history","before":"u1"}')
    assert isinstance(h, m.ThreadHistoryRequest) and h.limit == 20
    assert isinstance(h, ui.RELAYED_TO_ENGINE)
    assert (
        json.loads(ui.RuntimeStatus(engine="connected", roots=["/p"], approve="ask").to_json())[
            "type"
        ]
        == "runtime.status"
    )
