import { useEffect, useRef, useState } from "react";
import { Check, FolderGit2, ShieldAlert, X } from "lucide-react";
import { RichText } from "@/components/RichText";
import { Button } from "@/components/ui/button";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import { APPROVAL_TIMEOUT_MS } from "@/lib/protocol";
import type { Approval } from "@/lib/state";

const PREVIEW_LINES = 40;
const PREVIEW_CHARS = 4000;

/** A decision this soon after a prompt appears is a stray key press, not a decision. */
export const DECISION_GUARD_MS = 350;

export function previewText(content: string): { text: string; more: string | null } {
  const lines = content.split("\n");
  let text = lines.slice(0, PREVIEW_LINES).join("\n");
  if (text.length > PREVIEW_CHARS) text = text.slice(0, PREVIEW_CHARS);
  const shownLines = text.split("\n").length;
  const hiddenLines = lines.length - shownLines;
  const hiddenChars = content.length - text.length;
  const more =
    hiddenChars <= 0
      ? null
      : hiddenLines > 0
        ? `… ${hiddenLines} more line${hiddenLines === 1 ? "" : "s"}`
        : `… ${hiddenChars} more characters`;
  return { text, more };
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function titleFor(a: Approval): string {
  switch (a.action) {
    case "execute_command":
      return "Run this command?";
    case "write_file":
      return "Write this file?";
    case "read_file":
      return "Read this file?";
    case "list_dir":
      return "List this folder?";
    case "search_text":
      return "Search these files?";
    default:
      return `Allow ${a.action}?`;
  }
}

function ActionBody({ a }: { a: Approval }) {
  const p = a.payload;
  if (a.action === "execute_command") {
    const cmd = str(p.command) ?? (Array.isArray(p.argv) ? p.argv.map(String).join(" ") : JSON.stringify(p));
    return (
      <div className="space-y-1.5">
        <pre className="scroll-thin overflow-x-auto rounded-lg border bg-code px-3 py-2.5 font-mono text-sm" data-testid="approval-command">
          <span className="select-none text-muted-foreground">$ </span>
          {cmd}
        </pre>
        <p className="flex flex-wrap gap-x-4 text-xs text-muted-foreground">
          <span>
            in {str(p.cwd) ? <code className="font-mono">{str(p.cwd)}</code> : "the project root"}
          </span>
          {typeof p.timeout_s === "number" && <span>time limit {p.timeout_s} s</span>}
        </p>
      </div>
    );
  }
  if (a.action === "write_file") {
    const content = str(p.content) ?? "";
    const { text, more } = previewText(content);
    const bytes = new TextEncoder().encode(content).length;
    return (
      <div className="space-y-1.5">
        <p className="flex items-baseline justify-between gap-2 text-sm">
          <code className="truncate font-mono" data-testid="approval-path">
            {str(p.path)}
          </code>
          <span className="shrink-0 text-xs text-muted-foreground">
            {bytes} bytes, {content.split("\n").length} lines
          </span>
        </p>
        <pre
          className="scroll-thin max-h-60 overflow-auto rounded-lg border bg-code px-3 py-2 font-mono text-xs leading-relaxed"
          data-testid="approval-preview"
        >
          {text}
          {more && <span className="mt-1 block text-muted-foreground">{more}</span>}
        </pre>
      </div>
    );
  }
  const path = str(p.path);
  return (
    <div className="space-y-1.5">
      {path !== null && (
        <code className="block rounded-lg border bg-code px-3 py-2 font-mono text-sm" data-testid="approval-path">
          {path}
        </code>
      )}
      <pre className="scroll-thin max-h-40 overflow-auto rounded-lg border bg-code px-3 py-2 font-mono text-xs">
        {JSON.stringify(p, null, 2)}
      </pre>
    </div>
  );
}

function Countdown({ until }: { until: number }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const s = Math.max(0, Math.ceil((until - now) / 1000));
  return (
    <span className="tabular-nums">
      Auto-rejects in {Math.floor(s / 60)}:{String(s % 60).padStart(2, "0")}
    </span>
  );
}

export function ApprovalDialog({
  approvals,
  onDecide,
}: {
  approvals: Approval[];
  onDecide: (id: string, approve: boolean) => void;
}) {
  const a = approvals[0];
  const contentRef = useRef<HTMLDivElement>(null);
  const shownAt = useRef(0);

  // Each new prompt starts with focus on the dialog itself: Enter approves nothing.
  useEffect(() => {
    if (!a) return;
    shownAt.current = performance.now();
    const t = setTimeout(() => contentRef.current?.focus(), 0);
    return () => clearTimeout(t);
  }, [a?.id]); // eslint-disable-line react-hooks/exhaustive-deps

  const decide = (approve: boolean) => {
    if (!a) return;
    if (approve && performance.now() - shownAt.current < DECISION_GUARD_MS) return;
    onDecide(a.id, approve);
  };

  return (
    <Dialog open={!!a} onOpenChange={(open) => !open && decide(false)}>
      {a && (
        <DialogContent
          ref={contentRef}
          tabIndex={-1}
          data-testid="approval-dialog"
          data-approval-id={a.id}
          onOpenAutoFocus={(e) => {
            e.preventDefault();
            contentRef.current?.focus();
          }}
          onEscapeKeyDown={(e) => {
            e.preventDefault();
            decide(false);
          }}
          onPointerDownOutside={(e) => e.preventDefault()}
          onInteractOutside={(e) => e.preventDefault()}
        >
          <DialogHeader>
            <div className="flex items-center gap-2 text-warning">
              <ShieldAlert className="size-5" />
              <span className="text-xs font-medium uppercase tracking-wide">Needs your approval</span>
              {approvals.length > 1 && (
                <span className="ml-auto text-xs text-muted-foreground">1 of {approvals.length}</span>
              )}
            </div>
            <DialogTitle>{titleFor(a)}</DialogTitle>
            <DialogDescription>
              Voco asked to do this on your machine. The sandbox has paused it: nothing happens unless you approve.
            </DialogDescription>
          </DialogHeader>

          <ActionBody a={a} />

          <div className="rounded-lg border border-warning/30 bg-warning/10 px-3 py-2 text-sm" data-testid="approval-reason">
            <p className="text-xs font-medium text-warning">Why it needs approval</p>
            <p className="mt-0.5">
              <RichText text={a.reason || "It is a high-risk action."} />
            </p>
          </div>

          {a.roots.length > 0 && (
            <div className="text-xs text-muted-foreground" data-testid="approval-roots">
              <p className="mb-1 font-medium">Allowed project folders</p>
              <ul className="space-y-0.5">
                {a.roots.map((r) => (
                  <li key={r} className="flex items-center gap-1.5 font-mono">
                    <FolderGit2 className="size-3.5 shrink-0" />
                    <span className="truncate">{r}</span>
                  </li>
                ))}
              </ul>
            </div>
          )}

          <DialogFooter className="items-center sm:justify-between">
            <span className="text-xs text-muted-foreground">
              <Countdown until={a.receivedAt + APPROVAL_TIMEOUT_MS} />
              <span className="hidden sm:inline"> · Esc rejects · Tab, then Enter to choose</span>
            </span>
            <div className="flex gap-2">
              <Button variant="outline" onClick={() => decide(false)} data-testid="reject">
                <X /> Reject
              </Button>
              <Button onClick={() => decide(true)} data-testid="approve">
                <Check /> {a.action === "execute_command" ? "Approve and run" : a.action === "write_file" ? "Approve and write" : "Approve"}
              </Button>
            </div>
          </DialogFooter>
        </DialogContent>
      )}
    </Dialog>
  );
}
