/** Settings: what answers (command mode or a model), how risky actions are decided
 * (changed on the runtime, which validates it), the voice, and the project roots. */
import { Bot, FolderGit2, ShieldCheck, Terminal, Volume2 } from "lucide-react";
import { answerMode } from "@/components/Header";
import { Dialog, DialogContent, DialogDescription, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import type { ApproveMode } from "@/lib/protocol";
import type { AppState } from "@/lib/state";
import { cn } from "@/lib/utils";

const APPROVE: Record<ApproveMode, { title: string; detail: string }> = {
  ask: { title: "Ask me", detail: "Risky actions (commands that change files, writes) wait for your approval here." },
  deny: { title: "Always refuse", detail: "Risky actions are refused without asking; reads and searches still run." },
  all: { title: "Auto-approve", detail: "Chosen when Voco was started (--approve all); a page cannot turn it back on." },
};

function Section({ icon: Icon, title, children }: { icon: typeof Bot; title: string; children: React.ReactNode }) {
  return (
    <section className="space-y-2">
      <h3 className="inline-flex items-center gap-1.5 text-sm font-semibold">
        <Icon className="size-4 text-muted-foreground" /> {title}
      </h3>
      {children}
    </section>
  );
}

export function SettingsPanel({
  open,
  onOpenChange,
  state,
  onApprove,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  state: AppState;
  onApprove: (mode: ApproveMode) => void;
}) {
  const mode = answerMode(state);
  const { runtime } = state;
  const voice = state.session?.voice;
  const choices: ApproveMode[] = runtime.approveChoices.length ? runtime.approveChoices : ["ask", "deny"];
  const shown: ApproveMode[] = runtime.approve && !choices.includes(runtime.approve) ? [...choices, runtime.approve] : choices;
  const online = state.connection.status === "open";
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent className="max-h-[90vh] overflow-y-auto sm:max-w-lg" data-testid="settings">
        <DialogHeader>
          <DialogTitle>Settings</DialogTitle>
          <DialogDescription>This Voco runtime, for every open tab.</DialogDescription>
        </DialogHeader>
        <div className="space-y-5">
          <Section icon={mode?.command ? Terminal : Bot} title="Answers">
            {mode ? (
              <p className="text-sm" data-testid="settings-mode">
                <span className="font-medium">{mode.command ? "Command mode" : mode.label}</span>
                <span className="block text-xs text-muted-foreground">{mode.detail}</span>
              </p>
            ) : (
              <p className="text-sm text-muted-foreground">Not connected to the engine yet.</p>
            )}
            <p className="text-[11px] text-muted-foreground">Chosen when the engine starts (--llm / VOCO_LLM).</p>
          </Section>

          <Section icon={ShieldCheck} title="Risky actions">
            <div role="radiogroup" aria-label="Approval mode" className="grid gap-2">
              {shown.map((m) => {
                const selectable = choices.includes(m) && online;
                const active = runtime.approve === m;
                return (
                  <button
                    key={m}
                    type="button"
                    role="radio"
                    aria-checked={active}
                    disabled={!selectable}
                    onClick={() => !active && onApprove(m)}
                    data-testid={`approve-${m}`}
                    className={cn(
                      "rounded-lg border px-3 py-2 text-left text-sm transition-colors disabled:cursor-not-allowed disabled:opacity-60",
                      active ? "border-primary bg-primary/10" : "hover:bg-muted",
                    )}
                  >
                    <span className="font-medium">{APPROVE[m].title}</span>
                    {active && <span className="ml-2 text-[11px] text-primary">current</span>}
                    <span className="block text-xs text-muted-foreground">{APPROVE[m].detail}</span>
                  </button>
                );
              })}
            </div>
          </Section>

          <Section icon={Volume2} title="Voice">
            {voice ? (
              <>
                <select
                  className="h-9 w-full rounded-md border border-input bg-background px-2 text-sm disabled:opacity-70"
                  value={voice.voice}
                  disabled={(voice.voices ?? []).length <= 1}
                  aria-label="Voice"
                  data-testid="voice-select"
                  onChange={() => undefined}
                >
                  {(voice.voices?.length ? voice.voices : [voice.voice]).map((v) => (
                    <option key={v} value={v}>
                      {v} ({voice.provider})
                    </option>
                  ))}
                </select>
                {(voice.voices ?? []).length <= 1 && (
                  <p className="text-[11px] text-muted-foreground" data-testid="voice-note">
                    This engine has one voice installed, so there is nothing to switch to.
                  </p>
                )}
              </>
            ) : (
              <p className="text-sm text-muted-foreground">Not connected to the engine yet.</p>
            )}
          </Section>

          <Section icon={FolderGit2} title="Project">
            <ul className="space-y-1" data-testid="settings-roots">
              {runtime.roots.map((r) => (
                <li key={r} className="break-all rounded-md border bg-code px-2.5 py-1.5 font-mono text-xs">
                  {r}
                </li>
              ))}
            </ul>
            <p className="text-[11px] text-muted-foreground">Voco can only touch files under these folders (--root).</p>
          </Section>
        </div>
      </DialogContent>
    </Dialog>
  );
}
