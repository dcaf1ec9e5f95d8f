import { Timer } from "lucide-react";
import { Card } from "@/components/ui/card";
import { formatMs } from "@/components/Conversation";
import type { AppState } from "@/lib/state";

const ROWS: [string, string][] = [
  ["stt_ms", "Speech → text"],
  ["llm_ttft_ms", "Model, first words"],
  ["tts_ttfb_ms", "Voice, first audio"],
  ["engine_overhead_ms", "Engine overhead"],
];

/** The last live turn's timings as the page saw them, for a turn the engine sent no
 * `metrics` for (an interrupted reply ends before its metrics). */
export function pageTimings(
  state: AppState,
): { turnId: string; text: number | null; audio: number | null; interrupted: boolean; settled: boolean } | null {
  for (let i = state.turns.length - 1; i >= 0; i--) {
    const t = state.turns[i];
    if (t.restored || t.timing.finalAt === null) continue;
    const { finalAt, firstTextAt, firstAudioAt } = t.timing;
    if (firstTextAt === null && firstAudioAt === null) continue;
    const replies = t.responseIds.map((id) => state.replies[id]).filter((r) => r !== undefined);
    const interrupted = replies.some((r) => r.interrupted);
    // finished and no longer playing: the engine's metrics would have come by now
    const settled = replies.length > 0 && replies.every((r) => r.done && r.audio !== "streaming");
    return {
      settled,
      turnId: t.turnId,
      text: firstTextAt !== null ? firstTextAt - finalAt : null,
      audio: firstAudioAt !== null ? firstAudioAt - finalAt : null,
      interrupted,
    };
  }
  return null;
}

export function LatencyCard({ state }: { state: AppState }) {
  const m = state.lastMetrics;
  const page = pageTimings(state);
  // The newest turn has no engine figures (interrupted): show what the page measured.
  const usePage =
    page !== null && (m === null || m.turn_id !== page.turnId) && (page.interrupted || (m === null && page.settled));
  const e2e = state.turns
    .map((t) => t.metrics?.e2e_ms)
    .filter((v): v is number => typeof v === "number");
  const sorted = [...e2e].sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : null;
  return (
    <Card className="p-4" data-testid="latency">
      <div className="flex items-baseline justify-between">
        <h2 className="inline-flex items-center gap-1.5 text-sm font-semibold">
          <Timer className="size-4 text-muted-foreground" /> Latency
        </h2>
        <span className="text-[11px] text-muted-foreground">
          {state.rttMs !== null ? `engine round trip ${state.rttMs} ms` : ""}
        </span>
      </div>
      {usePage && page ? (
        <div data-testid="latency-page">
          <div className="mt-2 flex items-baseline gap-2">
            <span className="text-2xl font-semibold tabular-nums" data-testid="latency-e2e">
              {formatMs(page.audio)}
            </span>
            <span className="text-xs text-muted-foreground">your turn → first audio</span>
          </div>
          <dl className="mt-2 grid grid-cols-2 gap-x-4 gap-y-1 text-xs">
            <div className="flex justify-between gap-2">
              <dt className="text-muted-foreground">First words</dt>
              <dd className="font-mono tabular-nums">{formatMs(page.text)}</dd>
            </div>
          </dl>
          <p className="mt-2 text-[11px] text-muted-foreground">
            Last turn{page.interrupted ? " (interrupted)" : ""}: measured in this page from the transcript, so it leaves out
            speech-to-text; the engine sends its own breakdown only for replies that finish.
            {m ? ` Last full breakdown: ${formatMs(m.e2e_ms)}.` : ""}
          </p>
        </div>
      ) : m ? (
        <>
          <div className="mt-2 flex items-baseline gap-2">
            <span className="text-2xl font-semibold tabular-nums" data-testid="latency-e2e">
              {formatMs(m.e2e_ms)}
            </span>
            <span className="text-xs text-muted-foreground">end of your turn → first audio</span>
          </div>
          <dl className="mt-2 grid grid-cols-2 gap-x-4 gap-y-1 text-xs">
            {ROWS.filter(([k]) => typeof m[k] === "number").map(([k, label]) => (
              <div key={k} className="flex justify-between gap-2">
                <dt className="text-muted-foreground">{label}</dt>
                <dd className="font-mono tabular-nums">{formatMs(m[k] as number)}</dd>
              </div>
            ))}
          </dl>
          {e2e.length > 1 && (
            <p className="mt-2 text-[11px] text-muted-foreground">
              median over {e2e.length} turns: {formatMs(median)}
            </p>
          )}
        </>
      ) : (
        <p className="mt-2 text-xs text-muted-foreground">Per-turn timings appear after the first reply.</p>
      )}
    </Card>
  );
}
