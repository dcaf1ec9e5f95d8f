import { useEffect, useState, type ReactNode } from "react";
import { CircleAlert, CloudOff, KeyRound, RotateCw, TriangleAlert, Volume2, WifiOff, X } from "lucide-react";
import { Button } from "@/components/ui/button";
import type { LocalState } from "@/lib/client";
import type { AppState } from "@/lib/state";
import { cn } from "@/lib/utils";

function useNow(active: boolean, every = 500): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), every);
    return () => clearInterval(t);
  }, [active, every]);
  return now;
}

function Banner({
  tone,
  icon: Icon,
  children,
  actions,
  testid,
}: {
  tone: "error" | "warning" | "info";
  icon: typeof CircleAlert;
  children: ReactNode;
  actions?: ReactNode;
  testid?: string;
}) {
  return (
    <div
      role={tone === "error" ? "alert" : "status"}
      data-testid={testid}
      className={cn(
        "flex items-start gap-3 rounded-lg border px-3 py-2 text-sm",
        tone === "error" && "border-destructive/30 bg-destructive/10 text-foreground",
        tone === "warning" && "border-warning/30 bg-warning/10 text-foreground",
        tone === "info" && "border-info/30 bg-info/10 text-foreground",
      )}
    >
      <Icon
        className={cn(
          "mt-0.5 size-4 shrink-0",
          tone === "error" && "text-destructive",
          tone === "warning" && "text-warning",
          tone === "info" && "text-info",
        )}
      />
      <div className="min-w-0 flex-1">{children}</div>
      {actions && <div className="flex shrink-0 items-center gap-1">{actions}</div>}
    </div>
  );
}

export function Banners({
  state,
  local,
  onRetry,
  onRestart,
  onEnableAudio,
  onDismiss,
}: {
  state: AppState;
  local: LocalState;
  onRetry: () => void;
  onRestart: () => void;
  onEnableAudio: () => void;
  onDismiss: (id: number) => void;
}) {
  const { connection, runtime } = state;
  const lost = !connection.badLink && connection.status !== "open" && (connection.everOpened || connection.attempt > 0);
  const now = useNow(lost || state.runtime.engine === "reconnecting");
  const items: ReactNode[] = [];

  if (connection.badLink) {
    items.push(
      <Banner key="badlink" tone="error" icon={KeyRound} testid="banner-badlink">
        <p className="font-medium">This page's link is no longer valid.</p>
        <p className="text-muted-foreground">
          The local Voco runtime refused its launch secret — it was restarted, or the link is from an older run. Open
          the newest link that <code className="font-mono">voco up</code> (or <code className="font-mono">voco local</code>)
          printed in its terminal; restart it to get a fresh one.
        </p>
      </Banner>,
    );
  } else if (lost) {
    const secs = connection.retryAt ? Math.max(0, Math.ceil((connection.retryAt - now) / 1000)) : 0;
    items.push(
      <Banner
        key="lost"
        tone="error"
        icon={WifiOff}
        testid="banner-offline"
        actions={
          <Button size="sm" variant="outline" onClick={onRetry} disabled={connection.status === "connecting"}>
            <RotateCw /> Retry now
          </Button>
        }
      >
        <p className="font-medium">
          {connection.everOpened ? "Lost the connection to the local Voco runtime." : "Cannot reach the local Voco runtime."}
        </p>
        <p className="text-muted-foreground">
          {connection.status === "connecting"
            ? `Reconnecting… (attempt ${connection.attempt + 1})`
            : `Reconnecting in ${secs} s (attempt ${connection.attempt}).`}{" "}
          Is <code className="font-mono">voco up</code> still running? If it was restarted, open the new link it printed.
        </p>
      </Banner>,
    );
  } else if (connection.status === "open" && runtime.engine === "reconnecting") {
    const r = runtime.reconnect;
    const secs = r ? Math.max(0, Math.ceil((r.retryAt - now) / 1000)) : 0;
    items.push(
      <Banner key="engine" tone="warning" icon={CloudOff} testid="banner-engine-reconnecting">
        <p className="font-medium">The engine went away; resuming this conversation on the next one.</p>
        <p className="text-muted-foreground">
          {runtime.message ? `${runtime.message}. ` : ""}
          {r && (secs > 0 ? `Reconnecting in ${secs} s (attempt ${r.attempt}).` : `Reconnecting… (attempt ${r.attempt})`)}
          {state.outbox.length > 0 &&
            ` ${state.outbox.length} typed turn${state.outbox.length === 1 ? "" : "s"} will be sent when it is back.`}
        </p>
      </Banner>,
    );
  } else if (connection.status === "open" && runtime.engine === "disconnected") {
    items.push(
      <Banner
        key="engine"
        tone="warning"
        icon={CloudOff}
        testid="banner-engine"
        actions={
          <Button size="sm" variant="outline" onClick={onRestart}>
            <RotateCw /> Reconnect
          </Button>
        }
      >
        <p className="font-medium">The runtime lost the engine.</p>
        <p className="text-muted-foreground">
          {runtime.message ?? "Reconnecting and resuming this conversation…"}
          {state.outbox.length > 0 &&
            ` ${state.outbox.length} typed turn${state.outbox.length === 1 ? "" : "s"} will be sent when it is back.`}
        </p>
      </Banner>,
    );
  }

  if (local.needsGesture) {
    items.push(
      <Banner
        key="gesture"
        tone="info"
        icon={Volume2}
        actions={
          <Button size="sm" onClick={onEnableAudio}>
            Enable audio
          </Button>
        }
      >
        <p className="font-medium">The browser is holding audio until you click.</p>
        <p className="text-muted-foreground">Click “Enable audio” to hear replies and use the microphone.</p>
      </Banner>,
    );
  }

  for (const n of state.notices) {
    items.push(
      <Banner
        key={`n${n.id}`}
        tone={n.level}
        icon={n.level === "error" ? CircleAlert : TriangleAlert}
        testid="notice"
        actions={
          <Button size="icon" variant="ghost" className="size-7" aria-label="Dismiss" onClick={() => onDismiss(n.id)}>
            <X />
          </Button>
        }
      >
        <p>
          <span className="font-medium">{n.fatal ? "Session ended: " : ""}</span>
          {n.message}{" "}
          <span className="font-mono text-xs text-muted-foreground">{n.code}</span>
        </p>
      </Banner>,
    );
  }

  if (!items.length) return null;
  return <div className="mx-auto flex w-full max-w-[1400px] flex-col gap-2 px-4 pt-3">{items}</div>;
}
