import { useEffect, useRef } from "react";
import { AudioLines, Clock, History, Mic, Scissors, Unplug, X, Zap } from "lucide-react";
import { RichText } from "@/components/RichText";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { ScrollArea } from "@/components/ui/scroll-area";
import type { MicMode } from "@/lib/client";
import type { Metrics } from "@/lib/protocol";
import { unheardTail, type AppState, type Presence, type QueuedTurn, type Reply, type Turn } from "@/lib/state";

export function formatMs(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return "–";
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function MetricsLine({ m }: { m: Metrics }) {
  const parts: [string, number | null | undefined][] = [
    ["STT", m.stt_ms],
    ["LLM", m.llm_ttft_ms],
    ["TTS", m.tts_ttfb_ms],
  ];
  return (
    <div className="mt-1.5 flex flex-wrap items-center gap-x-3 gap-y-1 text-[11px] text-muted-foreground" data-testid="turn-metrics">
      <span className="inline-flex items-center gap-1 font-medium text-foreground/80">
        <Zap className="size-3 text-primary" /> {formatMs(m.e2e_ms)} to first audio
      </span>
      {parts
        .filter(([, v]) => typeof v === "number")
        .map(([k, v]) => (
          <span key={k} className="font-mono">
            {k} {formatMs(v)}
          </span>
        ))}
    </div>
  );
}

function ReplyView({ r, live }: { r: Reply; live: boolean }) {
  const tail = unheardTail(r);
  const heard = (r.interrupted && r.heard !== null ? r.heard : r.text).trimStart();
  return (
    <div data-testid="reply" data-response-id={r.responseId} data-interrupted={r.interrupted ? "true" : "false"}>
      <p className="whitespace-pre-wrap leading-relaxed">
        <RichText text={heard} />
        {tail && (
          <span
            className="text-muted-foreground/70 line-through decoration-muted-foreground/50"
            title="Not heard: cut off"
            data-testid="unheard"
          >
            {tail}
          </span>
        )}
        {r.transient && !r.done && (
          <span className="text-warning" data-testid="transient" title="Spoken now; not kept once you decide">
            {r.transient}
          </span>
        )}
        {!r.done && live && <span className="ml-0.5 inline-block h-4 w-1.5 translate-y-0.5 animate-blink bg-primary/70" />}
      </p>
      {r.interrupted && (
        <Badge variant="warning" className="mt-1.5" data-testid="interrupted">
          <Scissors />
          {r.haltReason === "interrupt" ? "Stopped" : "Cut off — you spoke"}
        </Badge>
      )}
    </div>
  );
}

function TurnView({ turn, state, last }: { turn: Turn; state: AppState; last: boolean }) {
  return (
    <li className="space-y-3" data-testid="turn" data-turn-id={turn.turnId} data-restored={turn.restored ? "true" : "false"} data-resume={turn.resume ?? ""}>
      {turn.userText && (
        <div className="flex gap-3">
          <div className="mt-0.5 flex size-7 shrink-0 items-center justify-center rounded-full bg-secondary text-[11px] font-semibold text-secondary-foreground">
            You
          </div>
          <p className="min-w-0 flex-1 whitespace-pre-wrap rounded-lg bg-muted px-3 py-2 leading-relaxed" data-testid="user-text">
            {turn.userText}
          </p>
        </div>
      )}
      {turn.resume && (
        <p className="ml-10 text-xs text-muted-foreground" data-testid="turn-resume" data-resume={turn.resume}>
          {turn.resume === "waiting"
            ? "The engine went away before answering this."
            : turn.resume === "resent"
              ? "Sent again to the engine that took over."
              : "Not answered: the engine went away twice. Send it again."}
        </p>
      )}
      {turn.responseIds.map((id) => {
        const r = state.replies[id];
        if (!r) return null;
        return (
          <div key={id} className="flex gap-3">
            <div className="mt-0.5 flex size-7 shrink-0 items-center justify-center rounded-full bg-primary/15 text-primary">
              <AudioLines className="size-4" />
            </div>
            <div className="min-w-0 flex-1 py-1">
              <ReplyView r={r} live={last} />
              {turn.metrics && id === turn.responseIds[turn.responseIds.length - 1] && <MetricsLine m={turn.metrics} />}
            </div>
          </div>
        );
      })}
    </li>
  );
}

function QueuedView({ q, onCancel, offline }: { q: QueuedTurn; onCancel: (id: number) => void; offline: boolean }) {
  return (
    <li className="flex gap-3" data-testid="queued-turn">
      <div className="mt-0.5 flex size-7 shrink-0 items-center justify-center rounded-full bg-secondary text-[11px] font-semibold text-secondary-foreground">
        You
      </div>
      <div className="min-w-0 flex-1 rounded-lg border border-dashed px-3 py-2">
        <p className="whitespace-pre-wrap leading-relaxed">{q.text}</p>
        <p className="mt-1 flex items-center gap-1.5 text-[11px] text-muted-foreground">
          <Clock className="size-3" />
          {offline ? "Not sent yet — waiting for the engine; it goes out when Voco reconnects." : "Queued — sent when the current reply ends."}
          <Button variant="ghost" size="sm" className="ml-auto h-6 px-2 text-[11px]" onClick={() => onCancel(q.id)} data-testid="cancel-queued">
            <X className="size-3" /> Cancel
          </Button>
        </p>
      </div>
    </li>
  );
}

function EmptyState({ mode, presence, micOn }: { mode: MicMode; presence: Presence; micOn: boolean }) {
  const offline = presence === "offline" || presence === "engine_down" || presence === "bad_link";
  return (
    <div className="flex h-full flex-col items-center justify-center gap-3 text-center">
      <div
        className={
          offline
            ? "flex size-12 items-center justify-center rounded-full bg-muted text-muted-foreground"
            : "flex size-12 items-center justify-center rounded-full bg-primary/10 text-primary"
        }
      >
        {offline ? <Unplug className="size-6" /> : <Mic className="size-6" />}
      </div>
      <div className="space-y-1">
        <p className="font-medium">
          {presence === "bad_link"
            ? "This link is no longer valid — open the newest one Voco printed."
            : offline
            ? "Waiting for Voco to connect…"
            : !micOn
              ? "The microphone is off — type your turn below."
              : mode === "ptt"
              ? "Hold Space (or the Talk button) and speak."
              : "Just talk — Voco is listening."}
        </p>
        <p className="mx-auto max-w-sm text-sm text-muted-foreground">
          Try “run the tests”, “list the files”, “search for TODO” or “git status”. You can also type below.
          Anything risky waits for your approval.
        </p>
      </div>
    </div>
  );
}

export function Conversation({
  state,
  mode,
  presence,
  micOn,
  onEarlier,
  onCancelQueued,
}: {
  state: AppState;
  mode: MicMode;
  presence: Presence;
  micOn: boolean;
  onEarlier: () => void;
  onCancelQueued: (id: number) => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const lastReply = (() => {
    const t = state.turns[state.turns.length - 1];
    const id = t?.responseIds[t.responseIds.length - 1];
    return id ? state.replies[id]?.text : "";
  })();

  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [state.turns.length, lastReply, state.partial, state.outbox.length]);

  const empty = state.turns.length === 0 && !state.partial && state.outbox.length === 0;
  const offline = presence === "offline" || presence === "engine_down";
  const firstLive = state.turns.findIndex((t) => !t.restored);
  return (
    <ScrollArea
      ref={ref}
      className="min-h-0 flex-1 px-5 py-5"
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      }}
      data-testid="conversation"
    >
      {empty ? (
        <EmptyState mode={mode} presence={presence} micOn={micOn} />
      ) : (
        <ol className="mx-auto max-w-3xl space-y-6">
          {state.history.nextBefore && (
            <li className="flex justify-center">
              <Button variant="outline" size="sm" onClick={onEarlier} disabled={state.history.loading} data-testid="load-earlier">
                <History /> {state.history.loading ? "Loading…" : "Earlier turns"}
              </Button>
            </li>
          )}
          {state.turns.map((t, i) => (
            <TurnView key={t.turnId} turn={t} state={state} last={i === state.turns.length - 1} />
          )).flatMap((el, i) =>
            i === firstLive && i > 0
              ? [
                  <li key="sep" className="flex items-center gap-3 text-[11px] text-muted-foreground" data-testid="restored-separator">
                    <span className="h-px flex-1 bg-border" /> earlier in this conversation ↑ · now ↓ <span className="h-px flex-1 bg-border" />
                  </li>,
                  el,
                ]
              : [el],
          )}
          {state.outbox.map((q) => (
            <QueuedView key={q.id} q={q} onCancel={onCancelQueued} offline={offline} />
          ))}
          {state.partial && (
            <li className="flex gap-3" data-testid="partial">
              <div className="mt-0.5 flex size-7 shrink-0 items-center justify-center rounded-full bg-secondary text-[11px] font-semibold text-secondary-foreground">
                You
              </div>
              <p className="min-w-0 flex-1 rounded-lg border border-dashed px-3 py-2 italic text-muted-foreground">
                {state.partial}…
              </p>
            </li>
          )}
        </ol>
      )}
    </ScrollArea>
  );
}
