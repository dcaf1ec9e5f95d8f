import { Bot, FolderGit2, Monitor, Moon, Settings, Sun, Terminal } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import type { AppState } from "@/lib/state";
import type { ThemeChoice } from "@/lib/theme";
import logo from "@/assets/voco.svg";

const NEXT: Record<ThemeChoice, ThemeChoice> = { system: "light", light: "dark", dark: "system" };
const LABEL: Record<ThemeChoice, string> = {
  system: "Theme: follows the system",
  light: "Theme: light",
  dark: "Theme: dark",
};

function basename(p: string): string {
  const parts = p.replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] || p;
}

/** "Command mode" (no language model) or the model that answers. */
export function answerMode(state: AppState): { label: string; detail: string; command: boolean } | null {
  const llm = state.session?.llm;
  if (!llm) return null;
  if (llm.command_mode) return { label: "Command mode", detail: "offline grammar, no language model", command: true };
  const models = Object.values(llm.models ?? {});
  const main = llm.models?.sonnet ?? models[0] ?? llm.provider;
  const fallback = llm.provider.includes(">command-mode") ? "; command mode if the model fails" : "";
  return { label: main, detail: `${llm.provider}: ${[...new Set(models)].join(" / ")}${fallback}`, command: false };
}

export function Header({
  state,
  theme,
  onTheme,
  onSettings,
}: {
  state: AppState;
  theme: ThemeChoice;
  onTheme: (t: ThemeChoice) => void;
  onSettings: () => void;
}) {
  const { connection, runtime } = state;
  const Icon = theme === "dark" ? Moon : theme === "light" ? Sun : Monitor;
  let conn: { label: string; variant: "success" | "warning" | "destructive" | "secondary" };
  if (connection.badLink) conn = { label: "Link invalid", variant: "destructive" };
  else if (connection.status !== "open") {
    conn = connection.status === "connecting" && !connection.everOpened
      ? { label: "Connecting…", variant: "secondary" }
      : { label: "Runtime offline", variant: "destructive" };
  } else if (runtime.engine === "connected") conn = { label: "Connected", variant: "success" };
  else if (runtime.engine === "connecting") conn = { label: "Engine connecting…", variant: "warning" };
  else if (runtime.engine === "reconnecting") conn = { label: "Engine reconnecting…", variant: "warning" };
  else if (runtime.engine === "disconnected") conn = { label: "Engine offline", variant: "destructive" };
  else conn = { label: "Connected to runtime", variant: "secondary" };

  const mode = answerMode(state);
  const ModeIcon = mode?.command ? Terminal : Bot;
  return (
    <header className="border-b bg-card/60 backdrop-blur">
      <div className="mx-auto flex h-14 max-w-[1400px] items-center gap-2 px-3 sm:gap-3 sm:px-4">
        <img src={logo} alt="" className="size-7 shrink-0" />
        <span className="shrink-0 text-base font-semibold tracking-tight">Voco</span>
        <span className="hidden text-xs text-muted-foreground xl:inline">voice coding assistant</span>
        <div className="ml-1 flex min-w-0 flex-1 items-center gap-2 sm:ml-3">
          {runtime.roots.length > 0 && (
            <span
              className="inline-flex min-w-0 max-w-full items-center gap-1.5 rounded-md border bg-background px-2 py-1 font-mono text-xs text-muted-foreground"
              title={runtime.roots.join("\n")}
              data-testid="roots"
            >
              <FolderGit2 className="size-3.5 shrink-0" />
              <span className="truncate">{runtime.roots.map(basename).join(", ")}</span>
            </span>
          )}
        </div>
        <div className="flex shrink-0 items-center gap-1 sm:gap-2">
          {mode && (
            <Badge variant="outline" className="hidden max-w-56 md:inline-flex" title={mode.detail} data-testid="answer-mode">
              <ModeIcon />
              <span className="truncate">{mode.label}</span>
            </Badge>
          )}
          {runtime.approve && (
            <Badge
              variant={runtime.approve === "ask" ? "outline" : runtime.approve === "deny" ? "secondary" : "warning"}
              title="How risky actions are decided"
              className="hidden lg:inline-flex"
            >
              {runtime.approve === "ask"
                ? "Risky actions: ask me"
                : runtime.approve === "deny"
                  ? "Risky actions: always refuse"
                  : "Risky actions: auto-approve"}
            </Badge>
          )}
          <Badge variant={conn.variant} data-testid="connection" className="gap-1.5" title={conn.label}>
            <span className="size-1.5 rounded-full bg-current" />
            <span className="hidden sm:inline">{conn.label}</span>
          </Badge>
          <Button variant="ghost" size="icon" aria-label="Settings" title="Settings" onClick={onSettings} data-testid="open-settings">
            <Settings />
          </Button>
          <Button variant="ghost" size="icon" aria-label={LABEL[theme]} title={LABEL[theme]} onClick={() => onTheme(NEXT[theme])}>
            <Icon />
          </Button>
        </div>
      </div>
    </header>
  );
}
