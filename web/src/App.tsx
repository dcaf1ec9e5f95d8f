import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { Monitor, Moon, Sun } from "lucide-react";
import { ActivityList } from "@/components/ActivityList";
import { ApprovalDialog } from "@/components/ApprovalDialog";
import { Banners } from "@/components/Banners";
import { Composer } from "@/components/Composer";
import { Conversation } from "@/components/Conversation";
import { Header } from "@/components/Header";
import { LatencyCard } from "@/components/LatencyCard";
import { SettingsPanel } from "@/components/SettingsPanel";
import { StatusCard } from "@/components/StatusCard";
import { Button } from "@/components/ui/button";
import type { VocoClient } from "@/lib/client";
import { presence } from "@/lib/state";
import { useTheme, type ThemeChoice } from "@/lib/theme";

const NOTICE_TTL_MS = 12_000;

export default function App({ client, theme: initial }: { client: VocoClient; theme: ThemeChoice }) {
  const state = useSyncExternalStore(client.subscribe, client.getState);
  const local = useSyncExternalStore(client.subscribe, client.getLocal);
  const [theme, setTheme] = useTheme(initial);
  const who = presence(state);
  const dialogOpen = state.approvals.length > 0;
  const [settingsOpen, setSettingsOpen] = useState(false);

  // Push-to-talk on Space; Esc stops a reply when no dialog is open.
  useEffect(() => {
    const editable = (t: EventTarget | null) =>
      t instanceof HTMLElement &&
      (t.isContentEditable || t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
    const down = (e: KeyboardEvent) => {
      // A dialog that handled the key (Esc = reject) has prevented its default.
      if (e.defaultPrevented || dialogOpen || editable(e.target)) return;
      if (document.querySelector("[role=dialog]")) return;
      if (e.code === "Space" && local.mode === "ptt") {
        e.preventDefault();
        if (!e.repeat) client.pttDown();
      } else if (e.key === "Escape" && (who === "speaking" || who === "thinking" || who === "running_tool")) {
        client.interrupt();
      }
    };
    const up = (e: KeyboardEvent) => {
      if (e.code === "Space" && local.mode === "ptt") {
        if (!editable(e.target)) e.preventDefault();
        client.pttUp();
      }
    };
    const blur = () => client.pttUp();
    window.addEventListener("keydown", down);
    window.addEventListener("keyup", up);
    window.addEventListener("blur", blur);
    return () => {
      window.removeEventListener("keydown", down);
      window.removeEventListener("keyup", up);
      window.removeEventListener("blur", blur);
    };
  }, [client, dialogOpen, local.mode, who]);

  // Non-fatal errors fade after a while; fatal ones stay until dismissed.
  useEffect(() => {
    const timers = state.notices
      .filter((n) => !n.fatal && n.level !== "error")
      .map((n) =>
        setTimeout(() => client.dispatch({ kind: "dismiss", id: n.id }), Math.max(0, n.at + NOTICE_TTL_MS - Date.now())),
      );
    return () => timers.forEach(clearTimeout);
  }, [client, state.notices]);

  // Browsers hold audio until the user interacts: any click or key resumes it.
  useEffect(() => {
    if (!local.needsGesture) return;
    const go = () => void client.enableAudio();
    window.addEventListener("pointerdown", go, true);
    window.addEventListener("keydown", go, true);
    return () => {
      window.removeEventListener("pointerdown", go, true);
      window.removeEventListener("keydown", go, true);
    };
  }, [client, local.needsGesture]);

  const decide = useCallback((id: string, approve: boolean) => client.decide(id, approve), [client]);

  return (
    <div className="flex h-full flex-col">
      <Header state={state} theme={theme} onTheme={setTheme} onSettings={() => setSettingsOpen(true)} />
      <Banners
        state={state}
        local={local}
        onRetry={() => client.retryNow()}
        onRestart={() => client.restartSession()}
        onEnableAudio={() => void client.enableAudio()}
        onDismiss={(id) => client.dispatch({ kind: "dismiss", id })}
      />
      <main className="mx-auto grid min-h-0 w-full max-w-[1400px] flex-1 grid-cols-1 gap-4 overflow-y-auto p-4 lg:grid-cols-[minmax(0,1fr)_380px] lg:overflow-hidden">
        <section
          className="flex min-h-[65vh] flex-col overflow-hidden rounded-xl border bg-card shadow-sm lg:min-h-0"
          aria-label="Conversation"
        >
          <Conversation
            state={state}
            mode={local.mode}
            presence={who}
            micOn={local.micState === "on" || local.micState === "starting" || local.micState === "off"}
            onEarlier={() => client.loadEarlier()}
            onCancelQueued={(id) => client.cancelQueued(id)}
          />
          <Composer
            client={client}
            local={local}
            presence={who}
            connected={state.connection.status === "open"}
          />
        </section>
        <aside className="flex flex-col gap-4 lg:min-h-0" aria-label="Status and activity">
          <StatusCard client={client} state={state} local={local} presence={who} onSettings={() => setSettingsOpen(true)} />
          <LatencyCard state={state} />
          <ActivityList rows={state.activity} />
        </aside>
      </main>
      <SettingsPanel
        open={settingsOpen && !dialogOpen}
        onOpenChange={setSettingsOpen}
        state={state}
        onApprove={(mode) => client.setApprove(mode)}
      />
      <ApprovalDialog approvals={state.approvals} onDecide={decide} />
    </div>
  );
}

export function NoSecret({ theme: initial }: { theme: ThemeChoice }) {
  const [theme, setTheme] = useTheme(initial);
  const next: Record<ThemeChoice, ThemeChoice> = { system: "light", light: "dark", dark: "system" };
  const Icon = theme === "dark" ? Moon : theme === "light" ? Sun : Monitor;
  return (
    <div className="flex h-full items-center justify-center p-6">
      <div className="max-w-md space-y-3 rounded-xl border bg-card p-6 shadow-sm">
        <div className="flex items-center justify-between">
          <h1 className="text-lg font-semibold">Open Voco from its link</h1>
          <Button variant="ghost" size="icon" aria-label="Theme" onClick={() => setTheme(next[theme])}>
            <Icon />
          </Button>
        </div>
        <p className="text-sm text-muted-foreground">
          This page needs the one-time link that <code className="font-mono">voco up</code> or{" "}
          <code className="font-mono">voco local</code> printed when it started (it carries a launch
          secret). Open that link, or restart Voco to get a new one.
        </p>
      </div>
    </div>
  );
}
