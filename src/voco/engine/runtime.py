"""Process-wide engine state shared by every session: models, graph, stores.

Built once at start-up (models loaded, graph compiled) so a session costs only
its own small state; the VAD in particular is one model serving all sessions
through :class:`~voco.audio.vad.BatchedVAD`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voco import __version__
from voco.agent.command_mode import CommandModeLLM
from voco.agent.graph import build_graph
from voco.audio.turns import TurnConfig
from voco.audio.vad import BatchedVAD, SileroVAD
from voco.auth.tokens import make_verifier
from voco.auth.verifier import Verifier
from voco.engine.admission import AdmissionConfig
from voco.engine.lifecycle import TurnDeadlines
from voco.engine.memory_store import BoundedMemorySaver
from voco.engine.tracing import TurnTracer, tracer_from_env
from voco.engine.turn_end import TurnEndConfig
from voco.protocol import messages as m
from voco.providers.base import LLM, STT, TTS
from voco.providers.deadline import with_deadlines
from voco.providers.registry import make_llm, make_stt, make_tts
from voco.store.tenancy import MemoryTenantStore, TenantStore

log = logging.getLogger("voco.engine")


@dataclass
class EngineConfig:
    llm: str = "auto"
    stt: str = "whisper"
    tts: str = "piper"
    turn: TurnConfig = field(default_factory=TurnConfig)
    turn_end: TurnEndConfig = field(default_factory=TurnEndConfig)  # silence by completeness
    # Supabase mode when set (issuer $supabase_url/auth/v1, keys from its JWKS);
    # else the embedded ES256 issuer in $VOCO_HOME
    supabase_url: str | None = None
    supabase_jwt_secret: str | None = None  # legacy HS256, Supabase mode only
    # None: VOCO_DATABASE_URL, else embedded Postgres; "memory": no durability
    database: str | None = None
    deadlines: TurnDeadlines = field(default_factory=TurnDeadlines)
    # SIGTERM → exit bound: drain ≤ 1/2, cancel ≤ 1/4, close models/store ≤ 1/4
    shutdown_s: float = 12.0
    memory_threads: int = 1000  # --database memory keeps at most this many idle threads
    # refuse session.start (4503) before one more would break the admitted ones
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)


@dataclass
class EngineRuntime:
    vad: BatchedVAD
    stt: STT
    tts: TTS
    llm: LLM
    graph: Any
    auth: Verifier
    tenants: TenantStore
    turn_config: TurnConfig
    deadlines: TurnDeadlines = field(default_factory=TurnDeadlines)
    turn_end: TurnEndConfig = field(default_factory=TurnEndConfig)
    shutdown_s: float = 12.0
    # memory mode's bounded saver: sessions pin their thread so it is not evicted
    retention: BoundedMemorySaver | None = None
    version: str = __version__
    # each answered turn's timings (ms) also go to these (the /metrics histograms)
    turn_observers: list[Callable[[Mapping[str, int]], None]] = field(default_factory=list)
    # OpenTelemetry spans per turn; None unless OTEL_* configure an exporter
    tracer: TurnTracer | None = None
    # a tentative halt's snippet decode (engine/barge.py): a cheaper recogniser
    # than ``stt`` for a few hundred ms of "mhm" or "wait"; None: ``stt`` itself
    snippet_stt: STT | None = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @classmethod
    async def create(
        cls,
        config: EngineConfig | None = None,
        *,
        stt: STT | None = None,
        tts: TTS | None = None,
        llm: LLM | None = None,
        checkpointer: Any = None,
        tenants: TenantStore | None = None,
    ) -> EngineRuntime:
        cfg = config or EngineConfig()
        stack = contextlib.AsyncExitStack()
        retention: BoundedMemorySaver | None = None
        try:
            if checkpointer is None:
                if cfg.database == "memory":  # bounded: idle threads are evicted
                    memory_tenants = MemoryTenantStore()
                    retention = BoundedMemorySaver(
                        cfg.memory_threads, on_evict=memory_tenants.forget
                    )
                    checkpointer, tenants = retention, tenants or memory_tenants
                else:  # VOCO_DATABASE_URL, else Postgres embedded in $VOCO_HOME/pgdata
                    from voco.store import open_store

                    store = await stack.enter_async_context(open_store(cfg.database))
                    checkpointer, tenants = store.checkpointer, tenants or store.tenants
            rt = cls(
                vad=BatchedVAD(SileroVAD()),
                stt=stt or make_stt(cfg.stt),
                tts=tts or make_tts(cfg.tts),
                llm=with_deadlines(
                    llm or build_llm(cfg.llm),
                    first_token_s=cfg.deadlines.first_token_s,
                    total_s=cfg.deadlines.total_s,
                ),
                graph=build_graph(checkpointer),
                auth=make_verifier(cfg.supabase_url, cfg.supabase_jwt_secret),
                tenants=tenants or MemoryTenantStore(),
                turn_config=cfg.turn,
                deadlines=cfg.deadlines,
                turn_end=cfg.turn_end,
                shutdown_s=cfg.shutdown_s,
                retention=retention,
                tracer=tracer_from_env(),
            )
            rt._stack = stack
            rt.snippet_stt = snippet_stt_for(rt.stt)
            await rt.stt.warmup()
            if rt.snippet_stt is not None:
                await rt.snippet_stt.warmup()
            await rt.tts.warmup()
        except BaseException:
            await stack.aclose()
            raise
        if (problem := await rt.auth.warmup()) is not None:
            log.warning("auth: %s (sessions are refused until the keys can be loaded)", problem)
        for weakness in rt.auth.weaknesses():
            log.warning("auth is weak: %s", weakness)
        log.info("engine ready: stt=%s tts=%s llm=%s", rt.stt.name, rt.tts.name, rt.llm.name)
        return rt

    async def aclose(self) -> None:
        self.vad.close()
        for p in (self.stt, self.tts, self.llm):
            await p.aclose()
        if self.snippet_stt is not None:
            await self.snippet_stt.aclose()
        await self.auth.aclose()
        if self.tracer is not None:  # flushes what is still batched
            self.tracer.shutdown()
        await self._stack.aclose()


def build_llm(name: str) -> LLM:
    """``--llm`` by name; the engine hands the providers layer the agent's command
    mode, which that lower layer may not import."""
    return make_llm(name, offline=CommandModeLLM)


def build_providers(stt: str, tts: str, llm: str) -> dict[str, Any]:
    """The three providers by name, as :meth:`EngineRuntime.create` takes them."""
    return {"stt": make_stt(stt), "tts": make_tts(tts), "llm": build_llm(llm)}


def describe_llm(llm: LLM) -> m.LlmInfo:
    """What ``session.ready.llm`` says: the provider chain and its tiers' models.
    ``command_mode`` only when no language model is configured at all."""
    models = {tier: llm.model_id(tier) for tier in ("sonnet", "haiku")}
    return m.LlmInfo(
        provider=llm.name,
        command_mode=llm.name == "command-mode",
        models=models,
    )


def describe_voice(tts: TTS) -> m.VoiceInfo:
    """The reply voice; ``voices`` lists every voice this engine can switch to
    (one, for the bundled Piper voice)."""
    voice = str(getattr(tts, "voice_name", None) or tts.name)
    return m.VoiceInfo(provider=tts.name, voice=voice, voices=[voice])


# The snippet recogniser's encoder window: a snippet is a few hundred ms, and
# bench/bench_bargein.py's stimuli decoded by tiny.en over 3 s misread fewer
# backchannels (1 of 20, every interruption cut) than base over 10 s (3 of 20)
# at about a fifth of the CPU (≈160 vs ≈870 ms p50 on one loaded core).
SNIPPET_WINDOW_S = 3.0
# A snippet only has to tell a backchannel ("mm-hmm", "okay, go on": at most
# ~6 tokens) from real words, and tiny.en over the padded window often loops
# ("yeah yeah yeah …") to its token limit: 12 tokens say enough, and the
# snippet's decode p50 fell from ~220 to ~130 ms (bench_bargein, idle).
SNIPPET_MAX_TOKENS = 12


def snippet_stt_for(stt: STT) -> STT | None:
    """The cheaper recogniser a tentative halt's snippet is decoded with, for
    the embedded Whisper: tiny.en over a short encoder window, on its own
    thread (a snippet never queues behind another session's full decode).
    None for other recognisers: a streaming service's preview costs nothing."""
    from voco.providers.whisper_stt import WhisperSTT

    if not isinstance(stt, WhisperSTT):
        return None
    # one thread: tiny's decode is faster on one than on two here (149 vs 180
    # ms alone), and it leaves the other core to the turn's own decode
    return WhisperSTT(
        model="tiny", min_context_s=SNIPPET_WINDOW_S, max_batch=1, cpu_threads=1,
        max_tokens=SNIPPET_MAX_TOKENS,
    )  # fmt: skip
