"""The ``voco`` command (protocol §6).

One ``_cmd_*`` function runs each subcommand and one ``_add_*`` function
declares its flags. Argument mistakes are found up front by
:mod:`voco.cli_checks` and reported as one line with exit status 2; failures
talking to the engine exit 1. No ordinary mistake ends in a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from voco import __version__
from voco.cli_checks import (
    UsageError,
    check_database,
    check_engine_url,
    check_out,
    check_port_free,
    check_roots,
    check_text,
    check_tracing,
    check_ttl,
    check_user,
    check_wav,
    read_token,
)
from voco.engine.event_loop import DEFAULT_LOOP, LOOPS

DEFAULT_PORT = 8765
DEFAULT_UI_PORT = 8766
DEFAULT_ENGINE = f"ws://127.0.0.1:{DEFAULT_PORT}/v1/session"
TOOL_PATH_HELP = (
    "colon-separated folders of your tools to make visible (read-only) to sandboxed "
    "commands, instead of those found on PATH; '' for none (default: $VOCO_TOOL_PATH)"
)
APPROVE_HELP = (
    "high-risk actions: ask = ask on this terminal (default), deny = refuse without "
    "asking, all = approve everything (tests only)"
)


# ------------------------------------------------------------------ helpers


def _build_providers(args: argparse.Namespace) -> dict[str, Any]:
    """Providers by name, built before anything binds a port (a missing key is named)."""
    from voco.compose import build_providers
    from voco.providers.base import ProviderError

    try:
        return build_providers(args.stt, args.tts, args.llm)
    except ProviderError as exc:
        raise UsageError(str(exc)) from None


def _engine_config(args: argparse.Namespace) -> Any:
    from voco.audio.turns import TurnConfig
    from voco.engine.lifecycle import TurnDeadlines
    from voco.engine.runtime import EngineConfig
    from voco.engine.turn_end import TurnEndConfig

    try:
        turn = TurnConfig(
            threshold=args.vad_threshold,
            neg_threshold=max(0.01, args.vad_threshold - 0.15),
            end_silence_ms=args.end_silence_ms,
        )
        turn_end = TurnEndConfig(
            complete_ms=args.complete_silence_ms,
            unsure_ms=args.end_silence_ms,
            incomplete_ms=args.incomplete_silence_ms,
        )
        defaults = TurnDeadlines()  # `voco up` has no deadline flags: the defaults
        deadlines = TurnDeadlines(
            first_token_s=getattr(args, "first_token_timeout", defaults.first_token_s),
            total_s=getattr(args, "reply_timeout", defaults.total_s),
            still_working_s=getattr(args, "still_working_after", defaults.still_working_s),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    extra: dict[str, Any] = {}
    if getattr(args, "shutdown_timeout", None) is not None:
        extra["shutdown_s"] = args.shutdown_timeout
    measured = getattr(args, "admission", "measured") == "measured"
    if getattr(args, "max_sessions", None) is not None or not measured:
        from voco.engine.admission import AdmissionConfig

        try:
            extra["admission"] = AdmissionConfig(max_sessions=args.max_sessions, measured=measured)
        except ValueError as exc:
            raise UsageError(f"--max-sessions: {exc}") from None
    return EngineConfig(
        llm=args.llm,
        stt=args.stt,
        tts=args.tts,
        database=args.database,
        turn=turn,
        turn_end=turn_end,
        supabase_url=getattr(args, "supabase_url", None) or None,
        supabase_jwt_secret=getattr(args, "supabase_jwt_secret", None) or None,
        deadlines=deadlines,
        **extra,
    )


def _check_auth_options(args: argparse.Namespace) -> None:
    if args.supabase_jwt_secret and not args.supabase_url:
        raise UsageError("SUPABASE_JWT_SECRET needs SUPABASE_URL (--supabase-url)")
    if args.supabase_url and not args.supabase_url.startswith(("https://", "http://")):
        raise UsageError(f"SUPABASE_URL must be an http(s) URL: {args.supabase_url!r}")
    if not args.supabase_url:
        from voco.auth.tokens import AuthError, TokenAuthority

        try:  # the embedded issuer's key, created now or refused with its path named
            TokenAuthority()
        except (AuthError, OSError) as exc:
            raise UsageError(str(exc)) from None


def _session_token(args: argparse.Namespace) -> str:
    """``--token-file``/``--token``/``$VOCO_TOKEN``, else one from the embedded auth."""
    token = read_token(args.token, args.token_file)
    if token is not None:
        return token
    from voco.auth.tokens import TokenAuthority

    return TokenAuthority().issue("local-user")


# -------------------------------------------------------------- subcommands


def _cmd_serve(args: argparse.Namespace) -> int:
    workers = _serve_workers_count(args)
    _engine_loop(args)  # a loop that cannot run here fails now, not in every worker
    check_port_free(args.host, args.port)
    _check_auth_options(args)
    check_tracing()
    check_database(args.database)  # before the slow imports: fail within seconds
    if workers > 1:
        # the providers are built lazily (models load in each worker), so building
        # them here is cheap and names a missing key once, not in N tracebacks
        _build_providers(args)
        return _serve_supervised(args, workers)
    url = f"ws://{args.host}:{args.port}/v1/session"
    print(f"voco serve: starting on {url} (loading models)…", file=sys.stderr, flush=True)
    try:
        started = _run_engine(
            args, None, lambda: print(f"voco serve: ready on {url}", file=sys.stderr, flush=True)
        )
    except KeyboardInterrupt:
        return 0
    if not started:
        print(
            f"voco serve: could not serve on {args.host}:{args.port} (port in use, or "
            "start-up failed; see the log above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _serve_workers_count(args: argparse.Namespace) -> int:
    """``--workers``: default the machine's cores (one with ``--database memory``,
    whose state is per process and so cannot be shared by several)."""
    from voco.engine.workers import machine_cores

    if args.workers is None:
        return 1 if args.database == "memory" else machine_cores()
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1 and args.database == "memory":
        raise UsageError(
            f"--workers {args.workers} needs a shared database: with --database memory each "
            "worker would keep its own threads and its own 16-session cap per user; use "
            "Postgres (the embedded default, or --database postgresql://…), or --workers 1"
        )
    return int(args.workers)


def _run_engine(args: argparse.Namespace, sock: Any, on_started: Callable[[], None]) -> bool:
    """One engine process: build the app, serve (on ``sock`` when a supervisor
    passed one), call ``on_started`` once it accepts; ``True`` if it started."""
    import uvicorn

    from voco.engine.server import create_app, uvicorn_options
    from voco.engine.shutdown import EngineServer

    config = _engine_config(args)
    providers = _build_providers(args)
    app = create_app(config=config, providers=providers)
    # EngineServer: SIGTERM drains live replies, then cuts and exits (bounded)
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
        app.state.admission,
    )

    async def main() -> bool:
        task = asyncio.create_task(server.serve(sockets=[sock] if sock is not None else None))
        while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn sets a flag)
            await asyncio.sleep(0.05)
        if server.started:
            # Everything loaded so far (models, libraries, the app) lives as
            # long as the process: out of the collector's sight, a full
            # collection walks only what sessions made. Measured on bench_load
            # (30 speaking sessions): the one gen-2 pause of a run, which
            # stops every session's audio at once, 183 → 40 ms.
            gc.freeze()
            on_started()
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
            await task
        return server.started

    with asyncio.Runner(loop_factory=_engine_loop(args)) as runner:
        return runner.run(main())


def _engine_loop(args: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop]:
    """``--loop``: the event loop an engine process runs on (engine/event_loop.py)."""
    from voco.engine.event_loop import LoopUnavailable, loop_factory  # imports uvloop

    try:
        return loop_factory(args.loop)
    except LoopUnavailable as exc:
        raise UsageError(str(exc)) from None


def _serve_worker(args: argparse.Namespace, sock: Any, index: int, ready: Any) -> None:
    """A supervised worker (a spawned process): one engine on the shared socket."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"%(asctime)s worker{index} %(name)s %(levelname)s %(message)s",
    )
    from voco.engine.workers import die_with_parent

    die_with_parent()  # a SIGKILLed supervisor must not leave engines on the port
    try:
        with contextlib.suppress(KeyboardInterrupt):
            _run_engine(args, sock, ready.set)
    except UsageError as exc:  # one clear line, no traceback, and no restart loop
        print(f"voco serve: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _serve_supervised(args: argparse.Namespace, workers: int) -> int:
    import functools

    from voco.engine.workers import Supervisor, listen

    url = f"ws://{args.host}:{args.port}/v1/session"
    embedded = None
    if args.database is None and not os.environ.get("VOCO_DATABASE_URL"):
        from voco.store import default_pgdata
        from voco.store.embedded import start_embedded

        embedded = start_embedded(default_pgdata())  # one server for every worker
        args.database = embedded.url
    try:
        try:
            sock = listen(args.host, args.port)
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
        print(
            f"voco serve: starting {workers} workers on {url} (loading models)…",
            file=sys.stderr,
            flush=True,
        )
        supervisor = Supervisor(
            functools.partial(_serve_worker, args),
            sock,
            workers,
            stop_timeout_s=_engine_config(args).shutdown_s + 5,
        )
        status = supervisor.run(
            lambda: print(
                f"voco serve: ready on {url} ({workers} workers)", file=sys.stderr, flush=True
            )
        )
        sock.close()
        return status
    finally:
        if embedded is not None:
            embedded.stop()


def _cmd_token(args: argparse.Namespace) -> int:
    from voco.auth.tokens import AuthError, TokenAuthority

    user = check_user(args.user)
    ttl = check_ttl(args.ttl)
    try:
        authority = TokenAuthority()
    except (AuthError, ValueError, OSError) as exc:
        print(f"voco token: cannot load the local signing key: {exc}", file=sys.stderr)
        return 1
    print(authority.issue(user, project_id=args.project, org_id=args.org, ttl_s=ttl))
    return 0


def _talk_output(args: argparse.Namespace) -> tuple[Path | None, str]:
    out = check_out(args.out) if args.out else None
    if args.play:
        if out is not None and out.suffix.lower() != ".wav":
            raise UsageError("--play with --out needs a .wav file (playback is PCM)")
        return out, "pcm_s16le"
    return out, "pcm_s16le" if out is not None and out.suffix.lower() == ".wav" else "mp3"


def _cmd_talk(args: argparse.Namespace) -> int:
    from voco.local.audio_source import MicrophoneSource, SpeakerPlayer
    from voco.local.engine_client import EngineUnreachable, SessionRefused
    from voco.local.mcp_bridge import McpBridge
    from voco.local.sandbox.display import escape
    from voco.local.talk import NoSpeech, talk, write_audio

    wav = check_wav(args.wav) if args.wav else None
    text = check_text(args.text) if args.text is not None else None
    engine = check_engine_url(args.engine)
    out, encoding = _talk_output(args)
    roots = check_roots(args.root)
    token = _session_token(args)
    try:
        source = MicrophoneSource() if args.mic else None
        player = SpeakerPlayer() if args.play else None
    except RuntimeError as exc:
        raise UsageError(f"--{'mic' if args.mic else 'play'} {exc}") from None
    if args.mic:
        print("voco: listening on the microphone… (Ctrl-C to stop)", file=sys.stderr)
    try:
        bridge = McpBridge(roots, args.approve)
    except ValueError as exc:  # SetupError: unsafe root, tampered audit log
        raise UsageError(str(exc)) from None
    try:
        result = asyncio.run(
            talk(
                engine,
                token,
                wav=wav,
                text=text,
                source=source,
                bridge=bridge,
                encoding=encoding,
                want_audio=out is not None or player is not None,
                player=player,
            )
        )
    except NoSpeech:
        print(f"voco: no speech heard in {args.wav or 'the audio'}", file=sys.stderr)
        return 1
    except (SessionRefused, EngineUnreachable) as exc:
        print(f"voco: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        why = str(exc) or type(exc).__name__
        print(f"voco: cannot talk to the engine at {engine}: {why}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if player is not None:
            player.close()
    # engine-supplied text: controls and bidi overrides shown, never obeyed
    print(f"you:  {escape(result.transcript)}")
    print(f"voco: {escape(result.reply)}")
    if result.metrics:
        shown = ", ".join(f"{k}={v}" for k, v in result.metrics.items() if k.endswith("_ms"))
        print(f"      ({shown})", file=sys.stderr)
    if out is not None:
        write_audio(result, out)
        print(f"reply audio: {out} ({len(result.audio)} bytes, {result.encoding})", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from voco.demo import run_demo

    wav = check_wav(args.wav) if args.wav else None
    out = check_out(args.out)
    check_roots(None)  # the demo's sandbox root is the current folder
    return run_demo(out, wav=wav)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from voco.local.mcp_server import run_mcp_server
    from voco.local.sandbox.errors import SetupError

    roots = check_roots(args.root)
    try:
        run_mcp_server(roots, args.approve)
    except SetupError as exc:  # e.g. a tampered audit log
        raise UsageError(str(exc)) from None
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    if args.database is not None:
        return _with_database(args.database, _verify_database)
    from voco.local.sandbox.audit import audit_verify_main, default_audit_path

    log = Path(args.log).expanduser() if args.log else default_audit_path()
    if not log.is_file():
        raise UsageError(f"no audit log at {log}")
    return audit_verify_main(log)


def _cmd_local(args: argparse.Namespace) -> int:
    from voco.local.launch import embedded_token_source, run_local

    engine = check_engine_url(args.engine)
    roots = check_roots(args.root)
    check_port_free("127.0.0.1", args.port)
    token: Any = read_token(args.token, args.token_file)
    if args.token_file not in (None, "-"):
        path = args.token_file  # re-read at each connect, so it can be rotated

        def token_from_file() -> str:
            return read_token(None, path) or ""

        token = token_from_file
    elif token is None:
        token = embedded_token_source()
    return run_local(engine, token, roots, args.approve, args.port)


def _with_database(url: str, job: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    from voco.store.run_on import with_database

    return with_database(url, job)


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


def _billing(args: argparse.Namespace) -> int:
    return _with_database(args.database or "", lambda url: _billing_cmd(args, url))


async def _billing_cmd(args: argparse.Namespace, url: str) -> int:
    from voco.billing import jobs, reporting, seats
    from voco.billing.stripe_api import BillingConfig, StripeFailure

    config = BillingConfig.from_env()
    cmd = getattr(args, "billing_cmd", "worker")
    if config is None and cmd != "status":
        print(f"voco {cmd}: {jobs.OFF}", file=sys.stderr)
        if cmd != "worker":
            return 1
    try:
        if cmd == "worker":
            await jobs.run_worker(url, once=args.once, config=config)
            return 0
        async with jobs.services(url, config) as s:
            if cmd == "status":
                return _print_status(await reporting.status(s.pool), config is not None)
            assert s.billing is not None
            if cmd == "aggregate":
                agg = await reporting.aggregate(s.pool)
                sent = await reporting.send_pending(s.pool, s.billing)
                print(f"aggregated {agg.rows} usage rows into {agg.reports} reports; "
                      f"sent {sent.sent}; {agg.expired} too old for Stripe")  # fmt: skip
                return 0
            for org in args.org or []:
                r = await seats.sync_seats(s.pool, s.billing, org, proration=s.proration)
                print(f"org {org}: {r.seats} seats, Stripe quantity {r.stripe_quantity}")
            repaired = await seats.check_drift(s.pool, s.billing, proration=s.proration)
            print(f"seat drift repaired in {len(repaired)} organisations")
            return 0
    except StripeFailure as exc:
        print(f"voco billing {cmd}: {exc} (see `voco billing status`)", file=sys.stderr)
        return 1


def _print_status(st: object, enabled: bool) -> int:
    from voco.billing.reporting import Status

    assert isinstance(st, Status)
    print("billing: " + ("on" if enabled else "OFF (STRIPE_SECRET_KEY is not set)"))
    print("reports: " + (", ".join(f"{k} {v}" for k, v in sorted(st.by_status.items())) or "none"))
    print(f"unreported usage rows: {st.unreported}")
    for org, n in sorted(st.held.items()):
        print(f"held (no Stripe customer): org {org}, {n} rows")
    for r in st.failed:
        print(f"{r['status']}: report {r['id']} org {r['org']} {r['event_name']} "
              f"{r['bucket_start']:%Y-%m-%d %H:%M} value {r['value']} "
              f"after {r['attempts']} attempts: {r['last_error']}")  # fmt: skip
    return 1 if st.failed else 0


def _roots(args: argparse.Namespace) -> list[Path]:
    return [Path(r) for r in (args.root or [os.getcwd()])]


def _cmd_up(args: argparse.Namespace) -> int:
    from voco.compose import run_up

    roots = check_roots(args.root)
    check_port_free("127.0.0.1", args.port)
    check_port_free("127.0.0.1", args.engine_port, "--engine-port")
    if args.port and args.port == args.engine_port:
        raise UsageError("--port and --engine-port must differ")
    check_database(args.database)
    config = _engine_config(args)
    providers = _build_providers(args)
    return run_up(roots, args.approve, args.port, args.engine_port, config, providers)


# -------------------------------------------------------------------- flags


def _add_engine_flags(s: argparse.ArgumentParser) -> None:
    """Provider and turn flags shared by ``serve`` and ``up`` (env defaults alike)."""
    s.add_argument(
        "--llm",
        default=os.environ.get("VOCO_LLM", "auto"),
        help="language model: auto (Anthropic if ANTHROPIC_API_KEY is set, else command "
        "mode), anthropic, openai (VOCO_OPENAI_BASE_URL, e.g. Ollama), command, or a "
        "comma list as a fallback chain (default: $VOCO_LLM or auto)",
    )
    s.add_argument(
        "--stt",
        default=os.environ.get("VOCO_STT", "whisper"),
        help="speech-to-text: whisper (= whisper:base, embedded), whisper:tiny, deepgram; "
        "a comma list is a fallback chain (default: $VOCO_STT or whisper)",
    )
    s.add_argument(
        "--tts",
        default=os.environ.get("VOCO_TTS", "piper"),
        help="text-to-speech: piper (embedded) or cartesia (default: $VOCO_TTS or piper)",
    )
    s.add_argument(
        "--vad-threshold",
        type=float,
        default=0.5,
        help="speech probability that counts as speech, 0-1 (default: 0.5)",
    )
    s.add_argument(
        "--end-silence-ms",
        type=int,
        default=320,
        help="silence that ends the user's turn when its words may or may not be a whole "
        "request, or the recogniser gives no early transcript, in ms (default: 320)",
    )
    s.add_argument(
        "--complete-silence-ms",
        type=int,
        default=160,
        help="silence that ends the turn after a whole request, in ms (default: 160)",
    )
    s.add_argument(
        "--incomplete-silence-ms",
        type=int,
        default=1000,
        help="silence waited after an unfinished sentence ('... lines of'), in ms (default: 1000)",
    )
    s.add_argument(
        "--database",
        default=os.environ.get("VOCO_DATABASE_URL"),
        help="Postgres URL for durable threads (default: $VOCO_DATABASE_URL, else an "
        "embedded Postgres in $VOCO_HOME/pgdata); 'memory' keeps nothing across restarts",
    )


def _add_runtime_flags(s: argparse.ArgumentParser, *, root_required: bool = False) -> None:
    s.add_argument(
        "--root",
        action="append",
        metavar="DIR",
        required=root_required,
        help="a folder the tools may use; repeat for more"
        + ("" if root_required else " (default: the current directory)"),
    )
    s.add_argument("--approve", choices=["ask", "deny", "all"], default="ask", help=APPROVE_HELP)


def _add_token_flags(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the access token from FILE ('-': stdin) (default: $VOCO_TOKEN, else a "
        "token from this machine's embedded auth)",
    )
    s.add_argument(
        "--token",
        metavar="JWT",
        help="the access token itself (visible to other users in `ps`: prefer "
        "$VOCO_TOKEN or --token-file)",
    )


def _add_serve(sub: Any) -> None:
    s = sub.add_parser("serve", help="run the cognitive engine")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    _add_engine_flags(s)
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
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        help="engine processes sharing the port (default: this machine's cores; 1 with "
        "--database memory, which cannot be shared)",
    )
    s.add_argument(
        "--max-sessions",
        type=int,
        default=None,
        help="per worker: refuse session.start (4503 at_capacity) beyond this many sessions, "
        "on top of the measured headroom (default: measured headroom only)",
    )
    s.add_argument(
        "--loop",
        choices=LOOPS,
        default=DEFAULT_LOOP,
        help=f"event loop of each engine process: uvloop (faster under load) or asyncio "
        f"(the standard library's) (default: {DEFAULT_LOOP})",
    )
    s.add_argument(
        "--admission",
        choices=["measured", "off"],
        default="measured",
        help="measured: refuse new sessions (4503) when loop lag or inference wait says the "
        "admitted ones would fall behind real time; off: only --max-sessions and draining "
        "refuse (a balancer in front does admission, or a shared test machine)",
    )
    s.set_defaults(fn=_cmd_serve)


def _add_token(sub: Any) -> None:
    t = sub.add_parser("token", help="print an access token the embedded auth accepts")
    t.add_argument(
        "--user", required=True, help="a UUID, or a name mapped to one (uuid5) as the sub"
    )
    t.add_argument("--project", help="limit the token to this project id (default: any)")
    t.add_argument("--org", help="the organisation id claim (default: none)")
    t.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds, > 0 (default: 3600)")
    t.set_defaults(fn=_cmd_token)


def _add_talk(sub: Any) -> None:
    k = sub.add_parser("talk", help="one session driven by a WAV file, text or the microphone")
    src = k.add_mutually_exclusive_group(required=True)
    src.add_argument("--wav", metavar="FILE", help="speak this audio file (any rate) in real time")
    src.add_argument("--text", help="send this typed turn")
    src.add_argument(
        "--mic", action="store_true", help="listen on the microphone (needs the audio extra)"
    )
    k.add_argument(
        "--engine", default=DEFAULT_ENGINE, metavar="URL", help=f"(default: {DEFAULT_ENGINE})"
    )
    _add_token_flags(k)
    _add_runtime_flags(k)
    k.add_argument(
        "--out",
        metavar="FILE",
        help="write the reply audio here (.wav: PCM, else MP3); without --out or --play "
        "the command returns when the reply text is complete",
    )
    k.add_argument(
        "--play", action="store_true", help="play the reply on the speakers (needs the audio extra)"
    )
    k.set_defaults(fn=_cmd_talk)


def _add_demo(sub: Any) -> None:
    d = sub.add_parser("demo", help="offline: speak the bundled question through the full loop")
    d.add_argument(
        "--out", default="voco-reply.mp3", metavar="FILE", help="(default: voco-reply.mp3)"
    )
    d.add_argument("--wav", metavar="FILE", help="ask this question instead of the bundled one")
    d.set_defaults(fn=_cmd_demo)


def _add_mcp(sub: Any) -> None:
    mc = sub.add_parser("mcp", help="serve the sandboxed tools over MCP stdio")
    mc.add_argument(
        "--root",
        action="append",
        required=True,
        metavar="DIR",
        help="a folder the tools may use; repeat for more",
    )
    mc.add_argument(
        "--approve",
        choices=["ask", "deny", "all"],
        default="deny",
        help="high-risk actions: deny = refuse (default), ask = ask the MCP client's user "
        "(elicitation), else this terminal, all = approve everything (tests only)",
    )
    mc.add_argument("--tool-path", help=TOOL_PATH_HELP)
    mc.set_defaults(fn=_cmd_mcp)


def _add_audit(sub: Any) -> None:
    a = sub.add_parser("audit", help="audit log tools")
    asub = a.add_subparsers(dest="audit_cmd", required=True)
    av = asub.add_parser("verify", help="check the hash chain of an audit log")
    av.add_argument(
        "log",
        nargs="?",
        help="the log (default: $VOCO_AUDIT_LOG, else ~/.local/state/voco/audit.jsonl)",
    )
    av.add_argument(
        "--database",
        nargs="?",
        const="",
        help="verify the engine database's audit trail instead (URL; default "
        "VOCO_DATABASE_URL, else the embedded database)",
    )
    av.set_defaults(fn=_cmd_audit)


def _add_db(sub: Any) -> None:
    db = sub.add_parser("db", help="engine database tools")
    dbsub = db.add_subparsers(dest="db_cmd", required=True)
    dm = dbsub.add_parser("migrate", help="apply supabase/migrations to the database")
    dm.add_argument("--database", help="Postgres URL (default VOCO_DATABASE_URL, else embedded)")
    dm.set_defaults(fn=_db_migrate)


def _add_billing(sub: Any) -> None:
    db_help = "Postgres URL (default VOCO_DATABASE_URL, else embedded)"
    w = sub.add_parser("worker", help="run the billing job queue (procrastinate)")
    w.add_argument("--once", action="store_true", help="process what is due, then exit")
    w.add_argument("--database", help=db_help)
    w.set_defaults(fn=_billing)
    b = sub.add_parser("billing", help="Stripe metered billing (off without STRIPE_SECRET_KEY)")
    bsub = b.add_subparsers(dest="billing_cmd", required=True)
    for name, text in (
        ("aggregate", "aggregate unreported usage and send it to Stripe now"),
        ("status", "reports pending/sent/failed, held usage, failures"),
    ):
        bp = bsub.add_parser(name, help=text)
        bp.add_argument("--database", help=db_help)
        bp.set_defaults(fn=_billing)
    bs = bsub.add_parser("seats", help="seat quantity in Stripe")
    bssub = bs.add_subparsers(dest="seats_cmd", required=True)
    bss = bssub.add_parser("sync", help="set the seat quantity of orgs, then check every org")
    bss.add_argument("--org", action="append", help="an organisation id to sync first")
    bss.add_argument("--database", help=db_help)
    bss.set_defaults(fn=_billing, billing_cmd="seats")


def _add_local(sub: Any) -> None:
    lo = sub.add_parser("local", help="the local runtime with the web UI")
    lo.add_argument("--engine", required=True, metavar="URL", help="the engine's session URL")
    _add_token_flags(lo)
    _add_runtime_flags(lo)
    lo.add_argument(
        "--port", type=int, default=DEFAULT_UI_PORT, help=f"UI port (default: {DEFAULT_UI_PORT})"
    )
    lo.set_defaults(fn=_cmd_local)


def _add_up(sub: Any) -> None:
    up = sub.add_parser("up", help="engine + local runtime + web UI on this machine")
    _add_runtime_flags(up)
    up.add_argument(
        "--port", type=int, default=DEFAULT_UI_PORT, help=f"UI port (default: {DEFAULT_UI_PORT})"
    )
    up.add_argument(
        "--engine-port",
        type=int,
        default=DEFAULT_PORT,
        help=f"engine port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    _add_engine_flags(up)
    up.set_defaults(fn=_cmd_up)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voco", description="Voco, the voice coding assistant")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument("--version", action="version", version=f"voco {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for add in (_add_up, _add_serve, _add_local, _add_token, _add_talk, _add_demo, _add_mcp):
        add(sub)
    _add_audit(sub)
    _add_db(sub)
    _add_billing(sub)
    from voco.admin.cli import add_admin_parser

    add_admin_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "tool_path", None) is not None:
        os.environ["VOCO_TOOL_PATH"] = args.tool_path  # read by every Sandbox we start
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return int(args.fn(args))
    except UsageError as exc:
        print(f"voco {args.cmd}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
