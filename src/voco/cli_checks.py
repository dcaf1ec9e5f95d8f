"""Up-front checks for the ``voco`` command's arguments.

Every ordinary mistake — a missing file, a URL that is not a WebSocket, a
folder that does not exist, a port someone else holds, a database that does
not answer — must end in one clear line and a non-zero exit, *before* any
slow work starts (loading models, streaming a question in real time). Each
check raises :class:`UsageError`; ``voco.cli.main`` prints it and exits 2.
The checks are shared by every subcommand that takes the same kind of flag.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

STDIN = "-"  # --token-file - reads the token from standard input


class UsageError(Exception):
    """A mistake in how ``voco`` was invoked; the message is the whole story."""


def check_wav(path: str) -> Path:
    """An existing, readable audio file that ``soundfile`` can decode."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"--wav {path}: no such file")
    if p.is_dir():
        raise UsageError(f"--wav {path}: is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise UsageError(f"--wav {path}: not readable (permission denied)")
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise UsageError(f"--wav {path}: not a WAV (or other audio) file: {exc}") from None
    if info.frames == 0:
        raise UsageError(f"--wav {path}: the file holds no audio")
    return p


def check_engine_url(url: str) -> str:
    """A ``ws://`` / ``wss://`` URL with a host (the path is checked on connect)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(
            f"--engine {url}: not a WebSocket URL; expected e.g. ws://127.0.0.1:8765/v1/session"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise UsageError(f"--engine {url}: the port is not a number") from None
    return url


def check_out(path: str) -> Path:
    """Somewhere a reply file can be written: its folder exists and is writable."""
    p = Path(path).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise UsageError(f"--out {path}: is a directory; name a file")
    if not parent.is_dir():
        raise UsageError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--out {path}: cannot write in {parent} (permission denied)")
    return p


def check_roots(roots: list[str] | None) -> list[Path]:
    """Every ``--root`` an existing folder that does not cover secrets (none
    given: the current directory), checked before anything starts.

    The policy (no ``$HOME``, ``/`` or folder holding Voco's own state) is the
    sandbox's :func:`~voco.local.sandbox.core.validate_roots`; this turns its
    refusal into the CLI's one line.
    """
    from voco.local.sandbox.core import state_dirs, validate_roots
    from voco.local.sandbox.errors import RootRefused

    given = [Path(r).expanduser() for r in (roots or [os.getcwd()])]
    try:
        return validate_roots(given, state=state_dirs())
    except RootRefused as exc:
        raise UsageError(f"--root: {exc}") from None


def check_port_free(host: str, port: int, flag: str = "--port") -> int:
    """Nobody else listens on ``host:port`` (0 picks a free one later)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"{flag} {port}: not a port number (0-65535)")
    if port == 0:
        return port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"{flag} {port}: port {port} on {host} is already in use; "
                    f"stop what holds it or pick another with {flag}"
                ) from None
            raise UsageError(f"{flag} {port}: cannot listen on {host}:{port}: {exc}") from None
    return port


def _display_dsn(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}{parts.path or ''}"


def check_database(url: str | None, timeout_s: int = 3) -> None:
    """A Postgres URL that answers within a few seconds (``memory`` and the
    embedded default need no check)."""
    if url is None or url == "memory":
        return
    if not url.startswith(("postgres://", "postgresql://")):
        raise UsageError(
            f"--database: expected a postgresql:// URL or 'memory', got {url.split('@')[-1]!r}"
        )
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=timeout_s, autocommit=True):
            pass
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--database: cannot reach {_display_dsn(url)}: {first}") from None


def check_text(text: str) -> str:
    if not text.strip():
        raise UsageError("--text: must not be empty")
    return text


def check_ttl(ttl: int) -> int:
    if ttl <= 0:
        raise UsageError(f"--ttl must be a positive number of seconds (got {ttl})")
    return ttl


def check_user(user: str) -> str:
    if not user.strip():
        raise UsageError("--user: must not be empty")
    return user


def read_token(token: str | None, token_file: str | None) -> str | None:
    """The access token from ``--token-file`` (``-`` is stdin), ``--token`` (with a
    warning: other users see it in ``ps``) or ``$VOCO_TOKEN``; None if none given."""
    if token_file is not None:
        try:
            from_stdin = token_file == STDIN
            raw = sys.stdin.read() if from_stdin else Path(token_file).read_text()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--token-file {token_file}: not a text file") from None
        value = raw.strip()
        if not value:
            raise UsageError(f"--token-file {token_file}: empty")
        return value
    if token is not None:
        print(
            "voco: warning: --token is visible to other users of this machine (ps); "
            "use VOCO_TOKEN or --token-file instead",
            file=sys.stderr,
        )
        return token
    env = os.environ.get("VOCO_TOKEN", "").strip()
    return env or None


def check_tracing() -> None:
    """The OTEL_* variables name an exporter this engine has (before models load)."""
    from voco.engine.tracing import TracingConfigError, validate_env

    try:
        validate_env(os.environ)
    except TracingConfigError as exc:
        raise UsageError(str(exc)) from None
