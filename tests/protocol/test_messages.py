import json

import pytest

from voco.protocol import messages as m
from voco.protocol.messages import MAX_DEPTH, ProtocolError, parse_client


def test_session_start_defaults_and_encodings():
    s = m.parse_client('{"type":"session.start","token":"t"}')
    assert isinstance(s, m.SessionStart)
    assert s.audio.output.encoding == "mp3" and s.audio.output.sample_rate == 24000
    pcm = m.parse_client(
        '{"type":"session.start","audio":{"output":{"encoding":"pcm_s16le","sample_rate":24000}}}'
    )
    assert pcm.audio.output.encoding == "pcm_s16le"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ("[1,2]", "invalid_message"),
        ('{"no_type": 1}', "invalid_message"),
        ('{"type": 7}', "invalid_message"),
        ('{"type":"bogus"}', "unknown_type"),
        ('{"type":"mcp.response","id":"1","status":"ok"}', "invalid_message"),
        ('{"type":"mcp.response","status":"success"}', "invalid_message"),
        ('{"type":"audio.played","response_id":"r","played_ms":-5}', "invalid_message"),
        ('{"type":"session.start","audio":{"output":{"encoding":"wav"}}}', "invalid_message"),
        ('{"type":"halt_audio","response_id":"r","reason":"barge_in","t_ms":1}', "unknown_type"),
    ],
)
def test_bad_client_frames_get_precise_errors(raw, code):
    with pytest.raises(m.ProtocolError) as e:
        m.parse_client(raw)
    assert e.value.code == code
    assert e.value.message


def test_server_messages_round_trip():
    msgs = [
        m.HaltAudio(response_id="r", reason="barge_in", t_ms=96),
        m.AgentDone(turn_id="t", response_id="r", text="hi", model="x", interrupted=True),
        m.McpRequest(id="1", action="read_file", payload={"path": "README.md"}),
        m.Metrics(turn_id="t", e2e_ms=250, stt_ms=10),
        m.Error(code="too_large", message="big", fatal=False),
    ]
    for msg in msgs:
        back = m.parse_server(msg.to_json())
        assert back == msg
    assert json.loads(msgs[3].to_json())["e2e_ms"] == 250


def test_unknown_mcp_action_still_parses_so_it_can_be_answered():
    req = m.parse_server('{"type":"mcp.request","id":"9","action":"format_disk","payload":{}}')
    assert isinstance(req, m.McpRequest) and req.action == "format_disk"


def test_mcp_response_carries_an_optional_audit_hash() -> None:
    import json as _json

    from voco.protocol.messages import McpResponse, ProtocolError, parse_client

    h = "ab" * 32
    raw = _json.dumps({"type": "mcp.response", "id": "c1", "status": "success", "audit_hash": h})
    msg = parse_client(raw)
    assert isinstance(msg, McpResponse) and msg.audit_hash == h
    plain = parse_client(_json.dumps({"type": "mcp.response", "id": "c1", "status": "success"}))
    assert isinstance(plain, McpResponse) and plain.audit_hash is None
    bad = {"type": "mcp.response", "id": "c1", "status": "success", "audit_hash": "x"}
    try:
        parse_client(_json.dumps(bad))
    except ProtocolError:
        pass
    else:
        raise AssertionError("a malformed audit_hash must be refused")


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"type":"text.input","text":"hi","x":' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"type":"ping","id":' + "[" * 40 + "]" * 40 + "}",
    ],
    ids=["arrays_100k", "objects_50k", "inside_valid_message", "depth_40"],
)
def test_deep_nesting_is_invalid_json_not_a_recursion_error(raw: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client(raw)
    assert info.value.code == "invalid_json" and "nested deeper" in info.value.message


def test_nesting_within_the_bound_parses() -> None:
    depth = MAX_DEPTH - 1  # the message object itself is one level
    raw = '{"type":"ping","x":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    assert parse_client(raw).type == "ping"


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"text.input","text":"\\ud800"}',
        '{"type":"ping","id":"x\\udc00"}',
        '{"type":"ping","\\ud800":1}',
        '{"type":"mcp.response","id":"a","status":"success","result":["\\udfff"]}',
    ],
)
def test_lone_surrogates_are_invalid_messages(raw: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client(raw)
    assert info.value.code == "invalid_message" and "surrogate" in info.value.message


def test_a_surrogate_pair_is_one_character_and_echoes() -> None:
    msg = parse_client('{"type":"ping","id":"\\ud83d\\ude00"}')
    assert msg.id == "\U0001f600"  # type: ignore[union-attr]
    assert "\U0001f600" in msg.to_json() or "\\ud83d" in msg.to_json()
