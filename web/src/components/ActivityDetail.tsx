/** The opened part of an activity row: what the action read, listed, found, ran or wrote. */
import type { ActivityDetail } from "@/lib/protocol";
import { cn } from "@/lib/utils";

function Pre({ text, className, testid }: { text: string; className?: string; testid?: string }) {
  return (
    <pre
      className={cn("scroll-thin max-h-56 overflow-auto whitespace-pre-wrap break-all rounded-md border bg-code px-2.5 py-2 font-mono text-[11px] leading-relaxed", className)}
      data-testid={testid}
    >
      {text}
    </pre>
  );
}

function Cut({ d }: { d: ActivityDetail }) {
  const notes: string[] = [];
  if (d.truncated) notes.push("the action's result was cut at its size limit");
  if (d.shown_truncated) notes.push("shortened for display");
  if (d.more) notes.push(`${d.more} more not shown`);
  if (!notes.length) return null;
  return <p className="text-[11px] text-muted-foreground">… {notes.join("; ")}</p>;
}

function DiffView({ diff }: { diff: string }) {
  const lines = diff.replace(/\n$/, "").split("\n");
  return (
    <pre className="scroll-thin max-h-56 overflow-auto rounded-md border bg-code py-2 font-mono text-[11px] leading-relaxed" data-testid="detail-diff">
      {lines.map((l, i) => (
        <div
          key={i}
          className={cn(
            "px-2.5 whitespace-pre-wrap break-all",
            l.startsWith("+") && !l.startsWith("+++") && "bg-success/10 text-success",
            l.startsWith("-") && !l.startsWith("---") && "bg-destructive/10 text-destructive",
            l.startsWith("@@") && "text-info",
          )}
        >
          {l || " "}
        </div>
      ))}
    </pre>
  );
}

export function ActivityDetailView({ d, failed }: { d: ActivityDetail; failed: boolean }) {
  switch (d.kind) {
    case "file":
      return (
        <div className="space-y-1.5">
          <p className="text-[11px] text-muted-foreground">
            {d.path} · {d.size ?? "?"} bytes
          </p>
          {d.binary ? (
            <p className="text-[11px] italic text-muted-foreground">binary content (not shown)</p>
          ) : (
            <Pre text={d.excerpt || "(empty file)"} testid="detail-excerpt" />
          )}
          <Cut d={d} />
        </div>
      );
    case "listing":
      return (
        <div className="space-y-1.5">
          <ul className="scroll-thin max-h-56 overflow-auto rounded-md border bg-code px-2.5 py-1.5 font-mono text-[11px]" data-testid="detail-listing">
            {(d.entries ?? []).map((e) => (
              <li key={e.name} className="flex justify-between gap-3 py-0.5">
                <span className={cn("truncate", e.kind === "dir" && "text-info")}>
                  {e.name}
                  {e.kind === "dir" ? "/" : ""}
                </span>
                {e.kind === "file" && <span className="shrink-0 tabular-nums text-muted-foreground">{e.size} B</span>}
              </li>
            ))}
            {!d.entries?.length && <li className="italic text-muted-foreground">empty folder</li>}
          </ul>
          <Cut d={d} />
        </div>
      );
    case "search":
      return (
        <div className="space-y-1.5">
          <ul className="scroll-thin max-h-56 overflow-auto rounded-md border bg-code px-2.5 py-1.5 font-mono text-[11px]" data-testid="detail-matches">
            {(d.matches ?? []).map((m, i) => (
              <li key={i} className="py-0.5">
                <span className="text-info">
                  {m.path}:{m.line}
                </span>{" "}
                <span className="whitespace-pre-wrap break-all">{m.text}</span>
              </li>
            ))}
            {!d.matches?.length && <li className="italic text-muted-foreground">no matches</li>}
          </ul>
          <Cut d={d} />
        </div>
      );
    case "command":
      return (
        <div className="space-y-1.5">
          <Pre text={`$ ${d.command ?? ""}`} testid="detail-command" />
          <p className={cn("text-[11px]", failed ? "font-medium text-destructive" : "text-muted-foreground")} data-testid="detail-exit">
            {d.timed_out ? "timed out · " : ""}exit code {d.exit_code ?? "?"}
            {typeof d.duration_ms === "number" ? ` · ${d.duration_ms} ms` : ""}
          </p>
          {d.changed_files && (
            <div className="text-[11px]" data-testid="detail-changed">
              {d.changed_files.length ? (
                <>
                  <span className="text-muted-foreground">Changed: </span>
                  <span className="font-mono">{d.changed_files.join(", ")}</span>
                </>
              ) : (
                <span className="text-muted-foreground">Nothing changed.</span>
              )}
            </div>
          )}
          {d.stdout ? (
            <div>
              <p className="mb-0.5 text-[10px] uppercase tracking-wide text-muted-foreground">stdout</p>
              <Pre text={d.stdout} testid="detail-stdout" />
            </div>
          ) : null}
          {d.stderr ? (
            <div>
              <p className="mb-0.5 text-[10px] uppercase tracking-wide text-muted-foreground">stderr</p>
              <Pre text={d.stderr} className={failed ? "border-destructive/30" : undefined} testid="detail-stderr" />
            </div>
          ) : null}
          {!d.stdout && !d.stderr && <p className="text-[11px] italic text-muted-foreground">no output</p>}
          <Cut d={d} />
        </div>
      );
    case "write":
      return (
        <div className="space-y-1.5">
          <p className="text-[11px] text-muted-foreground">
            {d.path} · wrote {d.bytes_written ?? "?"} bytes
          </p>
          {d.diff ? <DiffView diff={d.diff} /> : d.excerpt !== null && d.excerpt !== undefined ? <Pre text={d.excerpt} testid="detail-excerpt" /> : null}
          {!d.diff && d.excerpt === undefined && <p className="text-[11px] italic text-muted-foreground">no change</p>}
          <Cut d={d} />
        </div>
      );
  }
}
