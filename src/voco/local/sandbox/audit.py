"""Hash-chained, append-only audit log (JSON lines) and its verifier.

Each line is one canonical JSON object ``{"data", "kind", "prev", "seq",
"ts"}``; ``prev`` is the SHA-256 of the previous line's exact bytes (64 zeros
for the first line) and ``seq`` counts from 0. Editing, deleting, inserting or
reordering any line therefore breaks a link that :func:`verify` reports.

Cutting lines off the *end* leaves a valid shorter chain, which a chain alone
cannot detect. So every append also rewrites a sidecar ``<log>.head`` holding
the last ``seq`` and hash; verify compares the chain's end with it. The sidecar
sits next to the log, so it stops accidents and naive truncation, not an
attacker who can rewrite both files — for that, ship the head hash off the
machine (e.g. with each ``mcp.response``) and compare later.

Appends take a ``flock`` on the log so two processes sharing a log keep one
chain; within a process a lock serialises threads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(
        entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    ).encode("ascii")


def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def default_audit_path() -> Path:
    """``$VOCO_AUDIT_LOG``, else ``$XDG_STATE_HOME/voco/audit.jsonl`` (``~/.local/state``)."""
    env = os.environ.get("VOCO_AUDIT_LOG")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(state) / "voco" / "audit.jsonl"


class AuditLog:
    """Append-only writer. ``append`` is thread-safe and never reorders entries."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "r+b", buffering=0)

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _tail(self) -> tuple[int, str]:
        """(next seq, hash of last line) read from the file itself, under the flock."""
        f = self._file
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0, GENESIS
        # Walk back to the start of the last line.
        pos = size
        chunk = b""
        while pos > 0:
            step = min(4096, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + chunk
            body = chunk[:-1] if chunk.endswith(b"\n") else chunk
            if b"\n" in body:
                break
        body = chunk[:-1] if chunk.endswith(b"\n") else chunk
        last = body.rsplit(b"\n", 1)[-1]
        try:
            seq = int(json.loads(last)["seq"]) + 1
        except (ValueError, KeyError, TypeError):
            seq = -1  # corrupt tail: keep chaining; verify will report the break
        return seq, _digest(last)

    def append(self, kind: str, data: Any) -> dict[str, Any]:
        """Append one entry and return it (with ``seq`` and ``prev`` filled in)."""
        with self._lock:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            try:
                seq, prev = self._tail()
                entry = {"seq": seq, "ts": time.time(), "kind": kind, "data": data, "prev": prev}
                line = _canonical(entry)
                self._file.write(line + b"\n")
                if self.fsync:
                    os.fsync(self._file.fileno())
                self._write_head(seq, _digest(line))
            finally:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        return entry

    def _write_head(self, seq: int, digest: str) -> None:
        head = head_path(self.path)
        tmp = head.with_name(head.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"seq": seq, "hash": digest}) + "\n")
        if self.fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, head)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_line: int | None = None  # 1-based
    reason: str = ""
    head: str | None = None


def verify(path: Path) -> VerifyResult:
    """Check the whole chain and the head anchor; report the first bad line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return VerifyResult(False, 0, None, f"{path} does not exist")
    if raw and not raw.endswith(b"\n"):
        lines = raw.split(b"\n")
        return VerifyResult(False, len(lines) - 1, len(lines), "last line is incomplete")
    lines = raw.split(b"\n")[:-1] if raw else []
    hashes = [_digest(line) for line in lines]
    parsed: list[dict[str, Any] | None] = []
    for line in lines:
        try:
            obj = json.loads(line)
            parsed.append(obj if isinstance(obj, dict) else None)
        except ValueError:
            parsed.append(None)

    anchor = _read_head(path)
    for i, obj in enumerate(parsed):
        n = i + 1
        if obj is None or set(obj) != {"seq", "ts", "kind", "data", "prev"}:
            return VerifyResult(False, i, n, "not a valid audit entry")
        if _canonical(obj) != lines[i]:
            return VerifyResult(False, i, n, "entry is not in canonical form (edited)")
        if obj["seq"] != i:
            return VerifyResult(
                False,
                i,
                n,
                f"sequence number {obj['seq']}, expected {i} (entry deleted, inserted or moved)",
            )
        expected = GENESIS if i == 0 else hashes[i - 1]
        if obj["prev"] != expected:
            # The link into line n is broken. If line n itself is intact (its
            # own successor, or the head anchor, still vouches for it), the
            # previous line was edited; otherwise line n was.
            vouched = (i + 1 < len(parsed) and (parsed[i + 1] or {}).get("prev") == hashes[i]) or (
                i + 1 == len(parsed) and anchor is not None and anchor[1] == hashes[i]
            )
            bad = n - 1 if vouched and i > 0 else n
            return VerifyResult(False, i, bad, f"hash chain broken at line {bad} (entry edited)")
    if anchor is None:
        if lines:
            return VerifyResult(
                False,
                len(lines),
                len(lines),
                "head anchor missing: tail truncation would be undetectable",
            )
        return VerifyResult(True, 0, None, "empty log", None)
    seq, digest = anchor
    last_seq = len(lines) - 1
    if seq > last_seq:
        return VerifyResult(
            False,
            len(lines),
            len(lines) + 1,
            f"log truncated: head says entry {seq} exists, log ends at {last_seq}",
        )
    if seq < last_seq:
        return VerifyResult(
            False, len(lines), seq + 2, "entries appended without updating the head anchor"
        )
    if digest != hashes[-1]:
        return VerifyResult(
            False, len(lines), len(lines), "last entry does not match the head anchor (edited)"
        )
    return VerifyResult(True, len(lines), None, "", hashes[-1] if hashes else None)


def _read_head(path: Path) -> tuple[int, str] | None:
    try:
        obj = json.loads(head_path(path).read_text())
        return int(obj["seq"]), str(obj["hash"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def audit_verify_main(path: Path) -> int:
    """``voco audit verify``: print the verdict; 0 intact, 1 tampered, 2 unreadable."""
    result = verify(path)
    if result.ok:
        print(f"OK: {result.entries} entries, head {result.head or GENESIS}")
        return 0
    if result.first_bad_line is None:
        print(f"ERROR: {result.reason}")
        return 2
    print(f"TAMPERED: line {result.first_bad_line}: {result.reason}")
    return 1
