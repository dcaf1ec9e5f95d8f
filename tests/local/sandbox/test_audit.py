"""The hash-chained audit log: every kind of tampering is caught and located."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from voco.local.sandbox import AuditLog, audit_verify_main, verify
from voco.local.sandbox.audit import GENESIS, head_path
from voco.local.sandbox.errors import AuditTampered

pytestmark = pytest.mark.timeout(10)


def _log(path: Path, n: int = 6) -> list[bytes]:
    log = AuditLog(path)
    for i in range(n):
        log.append("request", {"id": f"r{i}", "payload": {"path": f"f{i}.txt"}})
    log.close()
    return path.read_bytes().splitlines(keepends=True)


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def test_fresh_log_verifies(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    res = verify(p)
    assert res.ok and res.entries == 6 and res.first_bad_line is None
    first = json.loads(lines[0])
    assert first["prev"] == GENESIS and first["seq"] == 0
    assert set(first) == {"seq", "ts", "kind", "data", "prev", "mac"}


def test_reopen_continues_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    _log(p, 3)
    _log(p, 3)
    res = verify(p)
    assert res.ok and res.entries == 6


@pytest.mark.parametrize("line", [1, 3, 5])
def test_edit_is_located(tmp_path: Path, line: int) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    lines[line - 1] = lines[line - 1].replace(b'"f', b'"g', 1)
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line == line, res


def test_edit_of_last_line_caught_by_head(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    lines[-1] = lines[-1].replace(b'"f5', b'"zz', 1)
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line == 6


def test_non_canonical_edit(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    lines[2] = lines[2].replace(b":", b": ", 1)
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line == 3


def test_garbage_line(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    lines[1] = b"not json\n"
    _write(p, lines)
    assert verify(p).first_bad_line == 2


@pytest.mark.parametrize("line", [1, 3, 5])
def test_deletion_is_located(tmp_path: Path, line: int) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    del lines[line - 1]
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line == line, res


def test_insertion_of_copy(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    lines.insert(3, lines[1])
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line == 4


def test_insertion_of_forged_linked_entry(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "a.jsonl"
    lines = _log(p)
    forged = {
        "seq": 3,
        "ts": 0,
        "kind": "request",
        "data": {},
        "prev": hashlib.sha256(lines[2].rstrip(b"\n")).hexdigest(),
    }
    lines.insert(3, json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line in (4, 5)


def test_reordering(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    lines[2], lines[3] = lines[3], lines[2]
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line == 3


@pytest.mark.parametrize("keep", [0, 1, 5])
def test_tail_truncation_caught_by_head(tmp_path: Path, keep: int) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    _write(p, lines[:keep])
    res = verify(p)
    assert not res.ok and "truncated" in res.reason
    assert res.first_bad_line == keep + 1


def test_partial_last_line(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    _write(p, [*lines[:-1], lines[-1][:20]])
    assert not verify(p).ok


def test_missing_head_is_a_failure(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    _log(p)
    head_path(p).unlink()
    res = verify(p)
    assert not res.ok and "head anchor missing" in res.reason
    assert res.anchor_missing and res.first_bad_line is None  # the chain itself is intact


def test_verify_copy_without_head_says_anchor_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "a.jsonl"
    _log(p)
    copy = tmp_path / "copy" / "a.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(p.read_bytes())
    assert audit_verify_main(copy) == 3
    out = capsys.readouterr().out
    assert "anchor missing" in out.lower() and "TAMPERED" not in out
    # ...but an edited copy without its head is still caught by the chain.
    lines = copy.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"f2', b'"zz', 1)
    _write(copy, lines)
    assert audit_verify_main(copy) == 1


def test_truncate_then_append_is_refused(tmp_path: Path) -> None:
    # The attack: cut entries off the end, then let the next append "repair" the head.
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    _write(p, lines[:3])
    with pytest.raises(AuditTampered, match="head anchor"):
        AuditLog(p)
    res = verify(p)
    assert not res.ok and "truncated" in res.reason
    assert p.read_bytes() == b"".join(lines[:3])  # nothing appended


def test_truncation_by_a_running_writer_is_refused_on_append(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = AuditLog(p)
    for i in range(4):
        log.append("t", {"i": i})
    data = p.read_bytes().splitlines(keepends=True)
    _write(p, data[:2])
    with pytest.raises(AuditTampered):
        log.append("t", {"i": 99})
    log.close()
    assert b'"i":99' not in p.read_bytes()


def test_rewritten_chain_and_head_without_key_is_caught(tmp_path: Path) -> None:
    # The attacker re-chains every line *and* rewrites the head, but has no key.
    import hashlib

    p = tmp_path / "a.jsonl"
    lines = _log(p)
    prev, new = GENESIS, []
    for i, raw in enumerate(lines):
        obj = json.loads(raw)
        obj["prev"] = prev
        if i == 1:
            obj["data"] = {"id": "forged"}
        line = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        prev = hashlib.sha256(line).hexdigest()
        new.append(line + b"\n")
    _write(p, new)
    head_path(p).write_text(json.dumps({"seq": 5, "hash": prev}) + "\n")
    res = verify(p)
    assert not res.ok and res.first_bad_line == 2 and "MAC" in res.reason
    with pytest.raises(AuditTampered):
        AuditLog(p)


def test_append_returns_the_line_hash(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "a.jsonl"
    log = AuditLog(p)
    entry = log.append("t", {"x": 1})
    log.close()
    assert entry["hash"] == hashlib.sha256(p.read_bytes().rstrip(b"\n")).hexdigest()
    assert verify(p).head == entry["hash"]


def test_key_lives_outside_the_log_folder_with_mode_0600(tmp_path: Path) -> None:
    p = tmp_path / "logs" / "a.jsonl"
    log = AuditLog(p)
    log.append("t", {})
    log.close()
    assert log.key_path.parent != p.parent
    assert log.key_path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(AuditTampered, match="own folder"):
        AuditLog(p, key_path=p.parent / "k")


def test_crash_between_line_and_head_is_repaired(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    _log(p, 3)
    head = head_path(p).read_bytes()
    _log(p, 1)
    head_path(p).write_bytes(head)  # as if we died before the head was replaced
    log = AuditLog(p)
    log.append("t", {})
    log.close()
    assert verify(p).ok


def test_appended_without_head(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    _log(p)
    head = head_path(p).read_bytes()
    _log(p, 1)
    head_path(p).write_bytes(head)
    res = verify(p)
    assert not res.ok and res.first_bad_line == 7


def test_full_rewrite_from_middle_caught_by_head(tmp_path: Path) -> None:
    # An attacker who re-chains every later line still can't match the head.
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    import hashlib

    new = lines[:2]
    prev = hashlib.sha256(lines[1].rstrip(b"\n")).hexdigest()
    for i in range(2, 6):
        obj = json.loads(lines[i])
        obj["prev"] = prev
        if i == 2:
            obj["data"] = {"id": "forged"}
        line = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        prev = hashlib.sha256(line).hexdigest()
        new.append(line + b"\n")
    _write(p, new)
    assert not verify(p).ok


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = AuditLog(p)
    log2 = AuditLog(p)  # a second writer on the same file (as another process would)

    def work(lg: AuditLog, k: int) -> None:
        for i in range(50):
            lg.append("t", {"k": k, "i": i})

    threads = [threading.Thread(target=work, args=(log if k % 2 else log2, k)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    log2.close()
    res = verify(p)
    assert res.ok and res.entries == 300, res


def test_verify_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "a.jsonl"
    lines = _log(p)
    assert audit_verify_main(p) == 0
    assert "OK: 6 entries" in capsys.readouterr().out
    del lines[2]
    _write(p, lines)
    assert audit_verify_main(p) == 1
    assert "TAMPERED: line 3" in capsys.readouterr().out
    assert audit_verify_main(tmp_path / "missing.jsonl") == 2


def test_bulk_content_is_not_logged(tmp_path: Path) -> None:
    from voco.local.sandbox import Sandbox
    from voco.protocol.messages import McpRequest

    root = tmp_path / "r"
    root.mkdir()
    (root / "big.txt").write_text("A" * 10000)
    log = AuditLog(tmp_path / "log" / "l.jsonl")
    sb = Sandbox([root], lambda _r, _w: True, audit=log)
    sb.handle(McpRequest(id="1", action="read_file", payload={"path": "big.txt"}))
    sb.handle(
        McpRequest(id="2", action="write_file", payload={"path": "w.txt", "content": "B" * 10000})
    )
    sb.close()
    log.close()
    text = (tmp_path / "log" / "l.jsonl").read_text()
    assert "A" * 300 not in text and "B" * 300 not in text and "sha256" in text
    assert verify(tmp_path / "log" / "l.jsonl").ok


def test_small_secrets_and_output_are_not_logged_but_long_commands_are(tmp_path: Path) -> None:
    from voco.local.sandbox import Sandbox
    from voco.protocol.messages import McpRequest

    root = tmp_path / "r"
    root.mkdir()
    (root / "notes.txt").write_text("API_KEY=sk-live-1234\n")
    log = AuditLog(tmp_path / "log" / "l.jsonl")
    sb = Sandbox([root], None, audit=log)
    sb.handle(McpRequest(id="1", action="read_file", payload={"path": "notes.txt"}))
    sb.handle(McpRequest(id="2", action="search_text", payload={"pattern": "API_KEY"}))
    sb.handle(
        McpRequest(id="3", action="write_file", payload={"path": "w", "content": "tok=abc123"})
    )
    padded = "rm -rf ~ ; " + "#" * 5000  # padding used to hide the command behind a hash
    resp = sb.handle(McpRequest(id="4", action="execute_command", payload={"command": padded}))
    sb.close()
    log.close()
    text = (tmp_path / "log" / "l.jsonl").read_text()
    assert "sk-live-1234" not in text and "abc123" not in text
    assert json.dumps(padded)[1:-1] in text
    assert resp.audit_hash is not None and len(resp.audit_hash) == 64
    assert verify(tmp_path / "log" / "l.jsonl").head == resp.audit_hash


def test_log_of_an_older_version_continues_and_verifies(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "a.jsonl"
    prev, raw = GENESIS, b""
    for i in range(3):  # entries as the previous version wrote them: no MAC
        obj = {"seq": i, "ts": 1.0, "kind": "t", "data": {"i": i}, "prev": prev}
        line = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        prev = hashlib.sha256(line).hexdigest()
        raw += line + b"\n"
    p.write_bytes(raw)
    head_path(p).write_text(json.dumps({"seq": 2, "hash": prev}) + "\n")
    log = AuditLog(p)
    log.append("t", {"i": 3})
    log.close()
    assert verify(p).ok and verify(p).entries == 4
    # ...but a MAC-less entry after keyed ones is a forgery.
    lines = p.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[1])
    lines.append(
        json.dumps(
            {**obj, "seq": 4, "prev": hashlib.sha256(lines[3].rstrip()).hexdigest()},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )
    _write(p, lines)
    res = verify(p)
    assert not res.ok and res.first_bad_line == 5 and "MAC" in res.reason
