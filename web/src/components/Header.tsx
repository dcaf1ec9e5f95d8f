import { FolderGit2, Monitor, Moon, Sun } from "lucide-react";
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

export function Header({
  state,
  theme,
  onTheme,
}: {
  state: AppState;
  theme: ThemeChoice;
  onTheme: (t: ThemeChoice) => void;
}) {
  const { connection, runtime } = state;
  const Icon = theme === "dark" ? Moon : theme === "light" ? Sun : Monitor;
  let conn: { label: string; variant: "success" | "warning" | "destructive" | "secondary" };
  if (connection.status !== "open") {
    conn = connection.status === "connecting" && !connection.everOpened
      ? { label: "Connecting…", variant: "secondary" }
      : { label: "Runtime offline", variant: "destructive" };
  } else if (runtime.engine === "connected") conn = { label: "Connected", variant: "success" };
  else if (runtime.engine === "connecting") conn = { label: "Engine connecting…", variant: "warning" };
  else if (runtime.engine === "disconnected") conn = { label: "Engine offline", variant: "destructive" };
  else conn = { label: "Connected to runtime", variant: "secondary" };

  return (
    <header className="border-b bg-card/60 backdrop-blur">
      <div className="mx-auto flex h-14 max-w-[1400px] items-center gap-3 px-4">
        <img src={logo} alt="" className="size-7" />
        <span className="text-base font-semibold tracking-tight">Voco</span>
        <span className="hidden text-xs text-muted-foreground sm:inline">voice coding assistant</span>
        <div className="ml-4 flex min-w-0 items-center gap-2">
          {runtime.roots.length > 0 && (
            <span
              className="inline-flex min-w-0 items-center gap-1.5 rounded-md border bg-background px-2 py-1 font-mono text-xs text-muted-foreground"
              title={runtime.roots.join("\n")}
              data-testid="roots"
            >
              <FolderGit2 className="size-3.5 shrink-0" />
              <span className="truncate">{runtime.roots.map(basename).join(", ")}</span>
            </span>
          )}
        </div>
        <div className="ml-auto flex items-center gap-2">
          {runtime.approve && (
            <Badge
              variant={runtime.approve === "ask" ? "outline" : runtime.approve === "deny" ? "secondary" : "warning"}
              title="How risky actions are decided"
            >
              {runtime.approve === "ask"
                ? "Risky actions: ask me"
                : runtime.approve === "deny"
                  ? "Risky actions: always refuse"
                  : "Risky actions: auto-approve"}
            </Badge>
          )}
          <Badge variant={conn.variant} data-testid="connection" className="gap-1.5">
            <span className="size-1.5 rounded-full bg-current" />
            {conn.label}
          </Badge>
          <Button variant="ghost" size="icon" aria-label={LABEL[theme]} title={LABEL[theme]} onClick={() => onTheme(NEXT[theme])}>
            <Icon />
          </Button>
        </div>
      </div>
    </header>
  );
}
