import { useCallback } from "react";
import {
  AudioLines,
  CloudOff,
  Hand,
  KeyRound,
  LoaderCircle,
  Mic,
  MicOff,
  ShieldAlert,
  SquareTerminal,
  WifiOff,
  type LucideIcon,
} from "lucide-react";
import { Card } from "@/components/ui/card";
import { answerMode } from "@/components/Header";
import { LevelMeter } from "@/components/LevelMeter";
import type { LocalState, VocoClient } from "@/lib/client";
import type { AppState, Presence } from "@/lib/state";
import { cn } from "@/lib/utils";

interface Look {
  icon: LucideIcon;
  title: string;
  detail: string;
  tone: string; // text colour
  ring: string; // background tint
  spin?: boolean;
  breathe?: boolean;
}

export function look(p: Presence, local: LocalState): Look {
  switch (p) {
    case "listening":
      if (local.micState === "denied" || local.micState === "error")
        return { icon: MicOff, title: "Microphone off", detail: "Type your turn below.", tone: "text-muted-foreground", ring: "bg-muted" };
      if (local.mode === "ptt")
        return local.pttHeld
          ? { icon: Mic, title: "Listening", detail: "Release to send.", tone: "text-success", ring: "bg-success/15", breathe: true }
          : { icon: Hand, title: "Ready", detail: "Hold Space or Talk to speak.", tone: "text-muted-foreground", ring: "bg-muted" };
      return { icon: Mic, title: "Listening", detail: "Speak whenever you like.", tone: "text-success", ring: "bg-success/15", breathe: true };
    case "thinking":
      return { icon: LoaderCircle, title: "Thinking", detail: "Working on your request.", tone: "text-info", ring: "bg-info/15", spin: true };
    case "speaking":
      return { icon: AudioLines, title: "Speaking", detail: "Talk over it, or press Stop (Esc).", tone: "text-primary", ring: "bg-primary/15", breathe: true };
    case "awaiting_approval":
      return { icon: ShieldAlert, title: "Awaiting your approval", detail: "Nothing runs until you decide.", tone: "text-warning", ring: "bg-warning/15" };
    case "running_tool":
      return { icon: SquareTerminal, title: "Running a tool", detail: "In the sandbox, on your project.", tone: "text-info", ring: "bg-info/15", breathe: true };
    case "bad_link":
      return { icon: KeyRound, title: "Link invalid", detail: "Open the newest link Voco printed.", tone: "text-destructive", ring: "bg-destructive/15" };
    case "offline":
      return { icon: WifiOff, title: "Offline", detail: "The local runtime is not reachable.", tone: "text-destructive", ring: "bg-destructive/15" };
    case "engine_down":
      return { icon: CloudOff, title: "Engine unavailable", detail: "Reconnecting…", tone: "text-warning", ring: "bg-warning/15" };
  }
}

export function StatusCard({
  client,
  state,
  local,
  presence,
  onSettings,
}: {
  client: VocoClient;
  state: AppState;
  local: LocalState;
  presence: Presence;
  onSettings: () => void;
}) {
  const mode = answerMode(state);
  const approve = state.runtime.approve;
  const l = look(presence, local);
  const Icon = l.icon;
  const readIn = useCallback(() => client.audio.inputLevel, [client]);
  const readOut = useCallback(() => client.audio.outputLevel, [client]);
  return (
    <Card className="p-4" data-testid="status" data-state={presence}>
      <div className="flex items-center gap-3">
        <div className={cn("flex size-11 shrink-0 items-center justify-center rounded-full", l.ring, l.tone)}>
          <Icon className={cn("size-5", l.spin && "animate-spin", l.breathe && "animate-breathe")} />
        </div>
        <div className="min-w-0 flex-1">
          <p className="font-semibold leading-tight" data-testid="state-title">
            {l.title}
          </p>
          <p className="truncate text-xs text-muted-foreground">{l.detail}</p>
        </div>
        {state.userSpeaking && (
          <span className="rounded-full bg-success/15 px-2 py-0.5 text-[11px] font-medium text-success">you’re speaking</span>
        )}
      </div>
      <div className="mt-4 grid grid-cols-2 gap-3 text-[11px] text-muted-foreground">
        <div className="flex items-center justify-between gap-2 rounded-md bg-muted/60 px-2 py-1.5">
          <span className="inline-flex items-center gap-1">
            {local.micState === "on" ? <Mic className="size-3" /> : <MicOff className="size-3" />} Mic
          </span>
          <LevelMeter read={readIn} label="Microphone level" className="text-success" />
        </div>
        <div className="flex items-center justify-between gap-2 rounded-md bg-muted/60 px-2 py-1.5">
          <span className="inline-flex items-center gap-1">
            <AudioLines className="size-3" /> Voice
          </span>
          <LevelMeter read={readOut} label="Reply audio level" className="text-primary" />
        </div>
      </div>
      <dl className="mt-3 space-y-1 text-[11px]" data-testid="session-info">
        <div className="flex gap-2">
          <dt className="w-16 shrink-0 text-muted-foreground">Answers</dt>
          <dd className="min-w-0 truncate" title={mode?.detail} data-testid="info-mode">
            {mode ? (mode.command ? "Command mode (no language model)" : mode.label) : "–"}
          </dd>
        </div>
        <div className="flex gap-2">
          <dt className="w-16 shrink-0 text-muted-foreground">Approvals</dt>
          <dd className="min-w-0 flex-1 truncate" data-testid="info-approve">
            {approve === "ask" ? "ask me" : approve === "deny" ? "always refuse" : approve === "all" ? "auto-approve" : "–"}
          </dd>
          <button type="button" className="shrink-0 text-primary hover:underline" onClick={onSettings} data-testid="change-settings">
            change
          </button>
        </div>
        <div className="flex gap-2">
          <dt className="w-16 shrink-0 text-muted-foreground">Project</dt>
          <dd className="min-w-0 break-all font-mono" data-testid="info-root">
            {state.runtime.roots.join(", ") || "–"}
          </dd>
        </div>
      </dl>
    </Card>
  );
}
