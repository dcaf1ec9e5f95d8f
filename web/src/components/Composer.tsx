import { useState } from "react";
import { Mic, SendHorizontal, Square } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Switch } from "@/components/ui/switch";
import type { LocalState, VocoClient } from "@/lib/client";
import { MAX_TEXT_INPUT } from "@/lib/protocol";
import type { Presence } from "@/lib/state";
import { cn } from "@/lib/utils";

export function Composer({
  client,
  local,
  presence,
  connected,
}: {
  client: VocoClient;
  local: LocalState;
  presence: Presence;
  connected: boolean;
}) {
  const [text, setText] = useState("");
  const busy = presence === "speaking" || presence === "thinking" || presence === "running_tool";
  const ptt = local.mode === "ptt";

  const submit = () => {
    if (client.sendText(text)) setText("");
  };

  return (
    <div className="border-t bg-background/60 p-3">
      <div className="mx-auto flex max-w-3xl flex-col gap-2 sm:flex-row sm:items-center">
        <div className="flex items-center gap-2">
          <label className="flex cursor-pointer items-center gap-2 rounded-md px-1 text-xs text-muted-foreground">
            <Switch
              checked={!ptt}
              onCheckedChange={(on) => client.setMode(on ? "handsfree" : "ptt")}
              aria-label="Hands-free (always listening)"
              data-testid="mode-switch"
            />
            <span className="w-[4.5rem]">{ptt ? "Push to talk" : "Hands-free"}</span>
          </label>
          {ptt && (
            <Button
              variant={local.pttHeld ? "default" : "secondary"}
              className={cn("w-24 touch-none", local.pttHeld && "ring-2 ring-primary/40")}
              aria-pressed={local.pttHeld}
              data-testid="talk"
              onPointerDown={(e) => {
                e.currentTarget.setPointerCapture(e.pointerId);
                client.pttDown();
              }}
              onPointerUp={() => client.pttUp()}
              onPointerCancel={() => client.pttUp()}
              onLostPointerCapture={() => client.pttUp()}
              onKeyDown={(e) => {
                if ((e.key === "Enter" || e.key === " ") && !e.repeat) {
                  e.preventDefault();
                  client.pttDown();
                }
              }}
              onKeyUp={(e) => {
                if (e.key === "Enter" || e.key === " ") {
                  e.preventDefault();
                  client.pttUp();
                }
              }}
              title="Hold to talk (or hold Space)"
            >
              <Mic /> {local.pttHeld ? "Talking" : "Talk"}
            </Button>
          )}
        </div>
        <form
          className="flex min-w-0 flex-1 items-center gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            submit();
          }}
        >
          <input
            value={text}
            onChange={(e) => setText(e.target.value)}
            maxLength={MAX_TEXT_INPUT}
            placeholder={
              presence === "bad_link"
                ? "Open the newest Voco link to type"
                : connected && presence !== "engine_down"
                  ? "Type a turn… (Enter to send)"
                  : "Type a turn… (sent when Voco reconnects)"
            }
            disabled={presence === "bad_link"}
            aria-label="Type a turn"
            data-testid="text-input"
            className="h-9 min-w-0 flex-1 rounded-md border border-input bg-background px-3 text-sm shadow-sm outline-none placeholder:text-muted-foreground focus-visible:ring-2 focus-visible:ring-ring"
          />
          <Button type="submit" variant="secondary" size="icon" disabled={!text.trim() || presence === "bad_link"} aria-label="Send" data-testid="send">
            <SendHorizontal />
          </Button>
        </form>
        <Button
          variant={busy ? "destructive" : "outline"}
          disabled={!connected}
          onClick={() => client.interrupt()}
          data-testid="stop"
          title="Stop the reply (Esc)"
          className="sm:w-24"
        >
          <Square className="fill-current" /> Stop
        </Button>
      </div>
    </div>
  );
}
