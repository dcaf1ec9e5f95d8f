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

export function LatencyCard({ state }: { state: AppState }) {
  const m = state.lastMetrics;
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
      {m ? (
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
