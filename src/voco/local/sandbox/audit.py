"""Hash-chained, HMAC-keyed, append-only audit log (JSON lines) and its verifier.

Each line is one canonical JSON object ``{"data", "kind", "mac", "prev",
"seq", "ts"}``; ``prev`` is the SHA-256 of the previous line's exact bytes (64
zeros for the first line), ``seq`` counts from 0, and ``mac`` is an
HMAC-SHA256 of the entry without it. Editing, deleting, inserting or
reordering any line breaks a link that :func:`verify` reports; rewriting the
whole chain consistently needs the key.

The key lives outside the log's folder (``$VOCO_AUDIT_KEY``, else
``$VOCO_HOME/secrets/audit.key``, mode 0600), so a copy of the log, or a
process that can reach the log but not Voco's home, cannot forge entries.

Cutting lines off the *end* leaves a valid shorter chain, so every append also
rewrites a sidecar ``<log>.head`` (``{seq, hash, mac}``). Before appending —
on open and on every append, under the ``flock`` — the file's tail is compared
with that anchor; a mismatch (truncated, edited, rewritten) is refused with
:class:`AuditTampered` instead of being papered over by a fresh head, so the
sandbox fails closed. One mismatch is benign and repaired: a crash between
writing a line and its head leaves the tail exactly one entry ahead, chained
to the head's hash. Each entry's hash is returned by :meth:`AuditLog.append`
so it can travel in the ``mcp.response`` (``audit_hash``) and anchor the local
log in the engine's records.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voco.local.sandbox.errors import AuditTampered

GENESIS = "0" * 64
_KEYS = {"seq", "ts", "kind", "data", "prev", "mac"}
_LEGACY_KEYS = _KEYS - {"mac"}


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(
        entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    ).encode("ascii")


def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _entry_mac(key: bytes, entry: dict[str, Any]) -> str:
    return _mac(key, _canonical({k: v for k, v in entry.items() if k != "mac"}))


def _head_mac(key: bytes, seq: int, digest: str) -> str:
    return _mac(key, f"head:{seq}:{digest}".encode("ascii"))


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


def voco_home() -> Path:
    return Path(os.environ.get("VOCO_HOME") or Path.home() / ".voco")


def default_key_path() -> Path:
    env = os.environ.get("VOCO_AUDIT_KEY")
    return Path(env) if env else voco_home() / "secrets" / "audit.key"


def load_key(path: Path, *, create: bool) -> bytes | None:
    """The HMAC key (hex in a 0600 file); made on first use when ``create``."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        if not create:
            return None
    except ValueError:
        raise AuditTampered(f"audit key {path} is not a hex key") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:  # another process made it first
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def _read_head(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(head_path(path).read_text())
        return {"seq": int(obj["seq"]), "hash": str(obj["hash"]), "mac": obj.get("mac")}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


class AuditLog:
    """Append-only writer. ``append`` is thread-safe and never reorders entries."""

    def __init__(self, path: Path, *, fsync: bool = False, key_path: Path | None = None) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.key_path = Path(key_path) if key_path is not None else default_key_path()
        if self.key_path.resolve().parent == self.path.resolve().parent:
            raise AuditTampered(
                f"the audit key {self.key_path} must not sit in the log's own folder"
            )
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = load_key(self.key_path, create=True)
        assert key is not None
        self._key = key
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "r+b", buffering=0)
        try:
            with self._locked():
                self._checked_tail()  # refuse a tampered log now, not at the first action
        except BaseException:
            self._file.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _locked(self) -> _Flock:
        return _Flock(self._file.fileno())

    def _last_line(self) -> bytes | None:
        f = self._file
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        pos, chunk = size, b""
        while pos > 0:
            step = min(4096, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + chunk
            if b"\n" in chunk[:-1]:
                break
        if not chunk.endswith(b"\n"):
            raise AuditTampered(f"{self.path}: the last line is incomplete")
        return chunk[:-1].rsplit(b"\n", 1)[-1]

    def _checked_tail(self) -> tuple[int, str]:
        """(next seq, hash of the last line), after comparing the tail with the anchor."""
        last = self._last_line()
        head = _read_head(self.path)
        where = f"{self.path}: run `voco audit verify {self.path}`, then move the log aside"
        if last is None:
            if head is not None and head["seq"] >= 0:
                raise AuditTampered(f"log is empty but its head says entry {head['seq']}; {where}")
            return 0, GENESIS
        try:
            entry = json.loads(last)
            seq, digest = int(entry["seq"]), _digest(last)
        except (ValueError, KeyError, TypeError):
            raise AuditTampered(f"the last entry is not valid; {where}") from None
        if "mac" in entry and not hmac.compare_digest(
            str(entry["mac"]), _entry_mac(self._key, entry)
        ):
            raise AuditTampered(f"the last entry's MAC does not match the key; {where}")
        if head is None:
            raise AuditTampered(f"head anchor missing; {where}")
        if head["mac"] is not None and not hmac.compare_digest(
            str(head["mac"]), _head_mac(self._key, head["seq"], head["hash"])
        ):
            raise AuditTampered(f"the head anchor's MAC does not match the key; {where}")
        if (head["seq"], head["hash"]) == (seq, digest):
            return seq + 1, digest
        if seq == head["seq"] + 1 and entry.get("prev") == head["hash"]:
            self._write_head(seq, digest)  # crashed between line and head: repair
            return seq + 1, digest
        raise AuditTampered(
            f"log tail (entry {seq}) does not match its head anchor (entry {head['seq']}); {where}"
        )

    def append(self, kind: str, data: Any) -> dict[str, Any]:
        """Append one entry; return it with ``seq``, ``prev``, ``mac`` and its ``hash``."""
        with self._lock, self._locked():
            seq, prev = self._checked_tail()
            entry: dict[str, Any] = {
                "seq": seq,
                "ts": time.time(),
                "kind": kind,
                "data": data,
                "prev": prev,
            }
            entry["mac"] = _entry_mac(self._key, entry)
            line = _canonical(entry)
            self._file.write(line + b"\n")
            if self.fsync:
                os.fsync(self._file.fileno())
            digest = _digest(line)
            self._write_head(seq, digest)
        return {**entry, "hash": digest}

    def _write_head(self, seq: int, digest: str) -> None:
        head = head_path(self.path)
        tmp = head.with_name(head.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        body = {"seq": seq, "hash": digest, "mac": _head_mac(self._key, seq, digest)}
        tmp.write_text(json.dumps(body) + "\n")
        if self.fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, head)


class _Flock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_line: int | None = None  # 1-based
    reason: str = ""
    head: str | None = None
    anchor_missing: bool = False  # chain intact, but a cut-off tail can't be ruled out
    macs_checked: bool = True


def verify(path: Path, *, key_path: Path | None = None) -> VerifyResult:
    """Check the whole chain, the MACs (when the key is here) and the head anchor."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return VerifyResult(False, 0, None, f"{path} does not exist")
    try:
        key = load_key(key_path or default_key_path(), create=False)
    except AuditTampered as exc:
        return VerifyResult(False, 0, None, str(exc))
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
    bad = _check_chain(lines, hashes, parsed, anchor, key)
    if bad is not None:
        return bad
    checked = key is not None
    if anchor is None:
        if lines:
            return VerifyResult(
                False,
                len(lines),
                None,
                f"head anchor missing: the chain of {len(lines)} entries is intact, "
                "but a cut-off tail cannot be ruled out",
                hashes[-1],
                anchor_missing=True,
                macs_checked=checked,
            )
        return VerifyResult(True, 0, None, "empty log", None, macs_checked=checked)
    return _check_anchor(lines, hashes, parsed, anchor, key)


def _check_chain(
    lines: list[bytes],
    hashes: list[str],
    parsed: list[dict[str, Any] | None],
    anchor: dict[str, Any] | None,
    key: bytes | None,
) -> VerifyResult | None:
    keyed = False
    for i, obj in enumerate(parsed):
        n = i + 1
        if obj is None or set(obj) not in (_KEYS, _LEGACY_KEYS):
            return VerifyResult(False, i, n, "not a valid audit entry")
        if _canonical(obj) != lines[i]:
            return VerifyResult(False, i, n, "entry is not in canonical form (edited)")
        if "mac" in obj:
            keyed = True
            if key is not None and not hmac.compare_digest(str(obj["mac"]), _entry_mac(key, obj)):
                return VerifyResult(False, i, n, "entry MAC does not match the key (forged)")
        elif keyed:
            return VerifyResult(False, i, n, "entry without a MAC after keyed entries (forged)")
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
                i + 1 == len(parsed) and anchor is not None and anchor["hash"] == hashes[i]
            )
            bad = n - 1 if vouched and i > 0 else n
            return VerifyResult(False, i, bad, f"hash chain broken at line {bad} (entry edited)")
    return None


def _check_anchor(
    lines: list[bytes],
    hashes: list[str],
    parsed: list[dict[str, Any] | None],
    anchor: dict[str, Any],
    key: bytes | None,
) -> VerifyResult:
    seq, digest = anchor["seq"], anchor["hash"]
    n = len(lines)
    if key is not None and n and "mac" in (parsed[-1] or {}):
        mac = anchor["mac"]
        if mac is None or not hmac.compare_digest(str(mac), _head_mac(key, seq, digest)):
            return VerifyResult(False, n, n, "head anchor MAC does not match the key (forged)")
    last_seq = n - 1
    if seq > last_seq:
        return VerifyResult(
            False, n, n + 1, f"log truncated: head says entry {seq} exists, log ends at {last_seq}"
        )
    if seq < last_seq:
        return VerifyResult(False, n, seq + 2, "entries appended without updating the head anchor")
    if n and digest != hashes[-1]:
        return VerifyResult(False, n, n, "last entry does not match the head anchor (edited)")
    return VerifyResult(
        True, n, None, "", hashes[-1] if hashes else None, macs_checked=key is not None
    )


def audit_verify_main(path: Path) -> int:
    """``voco audit verify``: 0 intact, 1 tampered, 2 unreadable, 3 intact chain, no anchor."""
    result = verify(path)
    note = "" if result.macs_checked else " (MACs not checked: audit key not found)"
    if result.ok:
        print(f"OK: {result.entries} entries, head {result.head or GENESIS}{note}")
        return 0
    if result.anchor_missing:
        print(f"ANCHOR MISSING: {result.reason}; last hash {result.head}{note}")
        return 3
    if result.first_bad_line is None:
        print(f"ERROR: {result.reason}")
        return 2
    print(f"TAMPERED: line {result.first_bad_line}: {result.reason}")
    return 1
