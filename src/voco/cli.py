"""The ``voco`` command (protocol §6)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8765


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from voco.audio.turns import TurnConfig
    from voco.engine.lifecycle import TurnDeadlines
    from voco.engine.runtime import EngineConfig
    from voco.engine.server import EngineServer, create_app, uvicorn_options
    from voco.providers.base import ProviderError
    from voco.providers.registry import make_llm, make_stt, make_tts

    try:
        turn = TurnConfig(
            threshold=args.vad_threshold,
            neg_threshold=max(0.01, args.vad_threshold - 0.15),
            end_silence_ms=args.end_silence_ms,
        )
    except ValueError as exc:
        print(f"voco serve: {exc}", file=sys.stderr)
        return 2
    if args.supabase_jwt_secret and not args.supabase_url:
        print(
            "voco serve: SUPABASE_JWT_SECRET needs SUPABASE_URL (--supabase-url)", file=sys.stderr
        )
        return 2
    if args.supabase_url and not args.supabase_url.startswith(("https://", "http://")):
        print(
            f"voco serve: SUPABASE_URL must be an http(s) URL: {args.supabase_url!r}",
            file=sys.stderr,
        )
        return 2
    if not args.supabase_url:
        from voco.auth.tokens import AuthError, TokenAuthority

        try:  # the embedded issuer's key, created now or refused with its path named
            TokenAuthority()
        except (AuthError, OSError) as exc:
            print(f"voco serve: {exc}", file=sys.stderr)
            return 2
    try:
        deadlines = TurnDeadlines(
            first_token_s=args.first_token_timeout,
            total_s=args.reply_timeout,
            still_working_s=args.still_working_after,
        )
    except ValueError as exc:
        print(f"voco serve: {exc}", file=sys.stderr)
        return 2
    config = EngineConfig(
        llm=args.llm,
        stt=args.stt,
        tts=args.tts,
        database=args.database,
        turn=turn,
        supabase_url=args.supabase_url or None,
        supabase_jwt_secret=args.supabase_jwt_secret or None,
        deadlines=deadlines,
        shutdown_s=args.shutdown_timeout,
    )
    try:  # fail before binding the port, with the missing key named
        providers = {
            "stt": make_stt(args.stt),
            "tts": make_tts(args.tts),
            "llm": make_llm(args.llm),
        }
    except ProviderError as exc:
        print(f"voco serve: {exc}", file=sys.stderr)
        return 2
    app = create_app(config=config, providers=providers)
    server = EngineServer(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="info" if args.verbose else "warning",
            **uvicorn_options(),
        ),
        app.state.live,
        config.shutdown_s,
    )
    server.run()
    return 0


def _token(args: argparse.Namespace) -> int:
    from voco.auth.tokens import AuthError, TokenAuthority

    if args.ttl <= 0:
        print("voco token: --ttl must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        authority = TokenAuthority()
    except (AuthError, ValueError, OSError) as exc:
        print(f"voco token: cannot load the local signing key: {exc}", file=sys.stderr)
        return 1
    print(authority.issue(args.user, project_id=args.project, org_id=args.org, ttl_s=args.ttl))
    return 0


def _talk(args: argparse.Namespace) -> int:
    from voco.auth.tokens import TokenAuthority
    from voco.local.engine_client import SessionRefused
    from voco.local.mcp_bridge import McpBridge
    from voco.local.talk import talk, write_audio

    token = args.token or os.environ.get("VOCO_TOKEN") or TokenAuthority().issue("local-user")
    out = Path(args.out) if args.out else None
    encoding = "pcm_s16le" if out and out.suffix.lower() == ".wav" else "mp3"
    roots = _roots(args)
    if roots is None:
        return 2
    try:
        bridge = McpBridge(roots, args.approve)
    except ValueError as exc:  # SetupError: unsafe root, tampered audit log
        print(f"voco: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(
            talk(
                args.engine,
                token,
                wav=Path(args.wav) if args.wav else None,
                text=args.text,
                bridge=bridge,
                encoding=encoding,
            )
        )
    except SessionRefused as exc:
        print(f"voco: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        print(f"voco: cannot talk to the engine at {args.engine}: {exc!r}", file=sys.stderr)
        return 1
    print(f"you:  {result.transcript}")
    print(f"voco: {result.reply}")
    if result.metrics:
        shown = ", ".join(f"{k}={v}" for k, v in result.metrics.items() if k.endswith("_ms"))
        print(f"      ({shown})", file=sys.stderr)
    if out:
        write_audio(result, out)
        print(f"reply audio: {out} ({len(result.audio)} bytes, {result.encoding})", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from voco.demo import run_demo

    # The demo's sandbox root is the current folder: check it before loading models.
    if _roots(argparse.Namespace(root=None)) is None:
        return 2
    return run_demo(Path(args.out), wav=Path(args.wav) if args.wav else None)


def _mcp(args: argparse.Namespace) -> int:
    from voco.local.mcp_server import run_mcp_server
    from voco.local.sandbox.errors import SetupError

    roots = _roots(args)
    if roots is None:
        return 2
    try:
        run_mcp_server(roots, args.approve)
    except SetupError as exc:
        print(f"voco: {exc}", file=sys.stderr)
        return 2
    return 0


def _audit(args: argparse.Namespace) -> int:
    if args.database is not None:
        return _with_database(args.database, _verify_database)
    if not args.log:
        print("voco audit verify: give a log FILE or --database", file=sys.stderr)
        return 2
    from voco.local.sandbox.audit import audit_verify_main

    return audit_verify_main(Path(args.log))


def _roots(args: argparse.Namespace) -> list[Path] | None:
    """The roots, checked before anything starts; None after printing why not.

    A missing folder, ``$HOME`` or ``/``, or one holding Voco's own state is
    refused with one line (no traceback, no engine connection first).
    """
    from voco.local.sandbox.core import state_dirs, validate_roots
    from voco.local.sandbox.errors import RootRefused

    try:
        return validate_roots([Path(r) for r in (args.root or [os.getcwd()])], state=state_dirs())
    except RootRefused as exc:
        print(f"voco: {exc}", file=sys.stderr)
        return None


def _with_database(url: str, job: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    """Run ``job(url)``: the given URL, else VOCO_DATABASE_URL, else the
    embedded server in $VOCO_HOME/pgdata (started for the job, then released)."""
    from voco.store import ENV_URL, default_pgdata

    target = url or os.environ.get(ENV_URL) or ""
    if target:
        return asyncio.run(job(target))
    from voco.store.embedded import start_embedded

    server = start_embedded(default_pgdata())
    try:
        return asyncio.run(job(server.url))
    finally:
        server.stop()


async def _verify_database(url: str) -> int:
    from voco.store.audit_db import verify_database

    try:
        result = await verify_database(url)
    except Exception as exc:
        print(f"voco audit verify: cannot read the audit trail: {exc}", file=sys.stderr)
        return 2
    if result.ok:
        print(f"audit chain intact: {result.rows} rows in {result.orgs} organisations")
        return 0
    for problem in result.problems:
        print(problem)
    print(f"audit chain BROKEN: {len(result.problems)} problems in {result.rows} rows")
    return 1


def _db_migrate(args: argparse.Namespace) -> int:
    return _with_database(args.database or "", _migrate)


async def _migrate(url: str) -> int:
    from voco.store.migrate import MigrationError, migrate_url

    try:
        result = await migrate_url(url)
    except MigrationError as exc:
        print(f"voco db migrate: {exc}", file=sys.stderr)
        return 1
    if result.applied:
        print(f"applied {', '.join(result.applied)}; database at {result.current}")
    else:
        print(f"database already at {result.current}")
    return 0


def _local(args: argparse.Namespace) -> int:
    from voco.auth.tokens import TokenAuthority
    from voco.local.launch import run_local

    roots = _roots(args)
    if roots is None:
        return 2
    token = args.token or os.environ.get("VOCO_TOKEN") or TokenAuthority().issue("local-user")
    return run_local(args.engine, token, roots, args.approve, args.port)


def _up(args: argparse.Namespace) -> int:
    from voco.local.launch import run_up

    roots = _roots(args)
    if roots is None:
        return 2
    return run_up(roots, args.approve, args.port, args.engine_port)


_TOOL_PATH_HELP = (
    "colon-separated folders of your tools to make visible (read-only) to sandboxed "
    "commands, instead of those found on PATH; '' for none (default: $VOCO_TOOL_PATH)"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voco", description="Voco, the voice coding assistant")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the cognitive engine")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--llm", default=os.environ.get("VOCO_LLM", "auto"))
    s.add_argument("--stt", default=os.environ.get("VOCO_STT", "whisper"))
    s.add_argument("--tts", default=os.environ.get("VOCO_TTS", "piper"))
    s.add_argument(
        "--vad-threshold",
        type=float,
        default=0.5,
        help="speech probability that counts as speech (0-1)",
    )
    s.add_argument(
        "--end-silence-ms", type=int, default=320, help="silence that ends the user's turn"
    )
    s.add_argument(
        "--database",
        default=os.environ.get("VOCO_DATABASE_URL"),
        help="Postgres URL for durable threads (default: VOCO_DATABASE_URL, else an embedded "
        "Postgres in $VOCO_HOME/pgdata); 'memory' keeps nothing across restarts",
    )
    s.add_argument(
        "--supabase-url",
        default=os.environ.get("SUPABASE_URL"),
        help="verify Supabase access tokens of this project (default: SUPABASE_URL; unset: "
        "the embedded issuer, `voco token`)",
    )
    s.add_argument(
        "--supabase-jwt-secret",
        default=os.environ.get("SUPABASE_JWT_SECRET"),
        help="also accept the project's legacy HS256 tokens (default: SUPABASE_JWT_SECRET)",
    )
    s.add_argument(
        "--first-token-timeout",
        type=float,
        default=15.0,
        help="seconds a model call may stay silent before it fails (or falls back)",
    )
    s.add_argument(
        "--reply-timeout", type=float, default=90.0, help="longest one model call may run"
    )
    s.add_argument(
        "--still-working-after",
        type=float,
        default=2.0,
        help="silence after which the user hears 'still working on it' (once)",
    )
    s.add_argument(
        "--shutdown-timeout",
        type=float,
        default=12.0,
        help="SIGTERM to exit: drain live replies (1/2), cut the rest (1/4), close (1/4)",
    )
    s.set_defaults(fn=_serve)

    t = sub.add_parser("token", help="print an access token the embedded auth accepts")
    t.add_argument("--user", required=True, help="a UUID, or a name mapped to one (uuid5)")
    t.add_argument("--project")
    t.add_argument("--org")
    t.add_argument("--ttl", type=int, default=3600)
    t.set_defaults(fn=_token)

    k = sub.add_parser("talk", help="one session driven by a WAV file or text")
    src = k.add_mutually_exclusive_group(required=True)
    src.add_argument("--wav")
    src.add_argument("--text")
    k.add_argument("--engine", default=f"ws://127.0.0.1:{DEFAULT_PORT}/v1/session")
    k.add_argument("--token")
    k.add_argument("--tool-path", help=_TOOL_PATH_HELP)
    k.add_argument("--root", action="append")
    k.add_argument("--approve", choices=["ask", "deny", "all"], default="ask")
    k.add_argument("--out")
    k.set_defaults(fn=_talk)

    d = sub.add_parser("demo", help="offline: speak the bundled question through the full loop")
    d.add_argument("--out", default="voco-reply.mp3")
    d.add_argument("--wav", help="another question to ask instead of the bundled one")
    d.set_defaults(fn=_demo)

    mc = sub.add_parser("mcp", help="serve the sandboxed tools over MCP stdio")
    mc.add_argument("--tool-path", help=_TOOL_PATH_HELP)
    mc.add_argument("--root", action="append", required=True)
    mc.add_argument("--approve", choices=["deny", "all"], default="deny")
    mc.set_defaults(fn=_mcp)

    a = sub.add_parser("audit", help="audit log tools")
    asub = a.add_subparsers(dest="audit_cmd", required=True)
    av = asub.add_parser("verify", help="check the hash chain of an audit log")
    av.add_argument("log", nargs="?", help="the local runtime's audit log file")
    av.add_argument(
        "--database",
        nargs="?",
        const="",
        help="verify the engine database's audit trail instead (URL; default "
        "VOCO_DATABASE_URL, else the embedded database)",
    )
    av.set_defaults(fn=_audit)

    db = sub.add_parser("db", help="engine database tools")
    dbsub = db.add_subparsers(dest="db_cmd", required=True)
    dm = dbsub.add_parser("migrate", help="apply supabase/migrations to the database")
    dm.add_argument("--database", help="Postgres URL (default VOCO_DATABASE_URL, else embedded)")
    dm.set_defaults(fn=_db_migrate)

    lo = sub.add_parser("local", help="the local runtime with the web UI")
    lo.add_argument("--engine", required=True)
    lo.add_argument("--token")
    lo.add_argument("--tool-path", help=_TOOL_PATH_HELP)
    lo.add_argument("--root", action="append")
    lo.add_argument("--approve", choices=["ask", "deny", "all"], default="ask")
    lo.add_argument("--port", type=int, default=8766)
    lo.set_defaults(fn=_local)

    up = sub.add_parser("up", help="engine + local runtime + web UI on this machine")
    up.add_argument("--tool-path", help=_TOOL_PATH_HELP)
    up.add_argument("--root", action="append")
    up.add_argument("--approve", choices=["ask", "deny", "all"], default="ask")
    up.add_argument("--port", type=int, default=8766)
    up.add_argument("--engine-port", type=int, default=DEFAULT_PORT)
    up.set_defaults(fn=_up)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "tool_path", None) is not None:
        os.environ["VOCO_TOOL_PATH"] = args.tool_path  # read by every Sandbox we start
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
