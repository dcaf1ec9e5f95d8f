import { useState } from "react";
import {
  Ban,
  Check,
  ChevronRight,
  CircleX,
  History,
  FilePenLine,
  FileText,
  FolderOpen,
  LoaderCircle,
  Search,
  ShieldAlert,
  SquareTerminal,
  Wrench,
  type LucideIcon,
} from "lucide-react";
import { RichText } from "@/components/RichText";
import { Badge, type BadgeProps } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { ScrollArea } from "@/components/ui/scroll-area";
import { ActivityDetailView } from "@/components/ActivityDetail";
import { describeAction, rowFailed, type ActivityRow } from "@/lib/state";
import { cn } from "@/lib/utils";

const ICONS: Record<string, LucideIcon> = {
  execute_command: SquareTerminal,
  read_file: FileText,
  list_dir: FolderOpen,
  write_file: FilePenLine,
  search_text: Search,
};

const VERBS: Record<string, string> = {
  execute_command: "Run",
  read_file: "Read",
  list_dir: "List",
  write_file: "Write",
  search_text: "Search",
};

export function statusBadge(r: ActivityRow): { label: string; variant: BadgeProps["variant"]; icon: LucideIcon | null } {
  if (r.stage === "awaiting_approval") return { label: "needs approval", variant: "warning", icon: ShieldAlert };
  if (r.stage === "running") return { label: "running", variant: "info", icon: LoaderCircle };
  if (r.stage === "requested") return { label: "checking", variant: "secondary", icon: null };
  if (rowFailed(r) && r.status !== "rejected") {
    const exit = r.detail?.exit_code;
    return {
      label: r.detail?.timed_out ? "timed out" : typeof exit === "number" && exit !== 0 ? `failed · exit ${exit}` : r.code === "scope_violation" ? "outside project" : "failed",
      variant: "destructive",
      icon: CircleX,
    };
  }
  switch (r.status) {
    case "success":
      return { label: "done", variant: "success", icon: Check };
    case "rejected":
      return {
        label: r.code === "denied_by_policy" ? "blocked by policy" : "rejected",
        variant: "destructive",
        icon: Ban,
      };
    case "error":
      return { label: r.code === "scope_violation" ? "outside project" : "failed", variant: "destructive", icon: CircleX };
    default:
      return { label: "done", variant: "secondary", icon: null };
  }
}

function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function Row({ r }: { r: ActivityRow }) {
  const [open, setOpen] = useState(false);
  const Icon = ICONS[r.action ?? ""] ?? Wrench;
  const b = statusBadge(r);
  const BIcon = b.icon;
  const what = describeAction(r.action, r.payload);
  const failed = rowFailed(r);
  const expandable = r.detail !== null && r.stage === "done";
  return (
    <li
      className={cn("group", failed && "bg-destructive/5")}
      data-testid="activity-row"
      data-id={r.id}
      data-stage={r.stage}
      data-status={r.status ?? ""}
      data-failed={failed ? "true" : "false"}
      data-decision={r.decision ?? ""}
      data-restored={r.restored ? "true" : "false"}
    >
      <button
        type="button"
        className={cn(
          "flex w-full gap-3 px-4 py-2.5 text-left",
          expandable ? "cursor-pointer hover:bg-muted/50 focus-visible:bg-muted/50 focus-visible:outline-none" : "cursor-default",
        )}
        aria-expanded={expandable ? open : undefined}
        disabled={!expandable}
        onClick={() => expandable && setOpen((o) => !o)}
        data-testid="activity-toggle"
      >
        <Icon className={cn("mt-0.5 size-4 shrink-0", failed ? "text-destructive" : "text-muted-foreground")} />
        <div className="min-w-0 flex-1">
          <div className="flex items-center gap-2">
            <span className="text-xs text-muted-foreground">{VERBS[r.action ?? ""] ?? r.action ?? "Action"}</span>
            {what === "." || what === "./" ? (
              <span className="min-w-0 flex-1 truncate text-xs italic text-muted-foreground">project root</span>
            ) : (
              <code className="min-w-0 flex-1 truncate font-mono text-xs" title={what}>
                {what || "…"}
              </code>
            )}
            {expandable && (
              <ChevronRight
                className={cn("size-3.5 shrink-0 text-muted-foreground transition-transform", open && "rotate-90")}
                aria-hidden
              />
            )}
          </div>
          <div className="mt-1 flex flex-wrap items-center gap-1.5 text-[11px] text-muted-foreground">
            <Badge variant={b.variant} data-testid="activity-status">
              {BIcon && <BIcon className={b.icon === LoaderCircle ? "animate-spin" : undefined} />}
              {b.label}
            </Badge>
            {r.decision && r.code !== "denied_by_policy" && (
              <span className={r.decision === "approved" ? "text-success" : "text-destructive"}>
                {r.decision === "approved" ? "approved by you" : r.decision === "expired" ? "no answer in time" : "by you"}
              </span>
            )}
            {r.summary && r.stage === "done" && !failed && r.status === "success" && (
              <span className="min-w-0 truncate font-mono" data-testid="activity-summary" title={r.summary}>
                {r.summary}
              </span>
            )}
            {r.summary && r.stage === "done" && (failed || r.status !== "success") && r.code !== "denied_by_user" && !/^exit -?\d+$/.test(r.summary) && (
              <span className="min-w-0 truncate" title={r.summary} data-testid="activity-summary">
                {r.summary}
              </span>
            )}
            <span className="ml-auto inline-flex items-center gap-1 tabular-nums opacity-70">
              {r.restored ? (
                <>
                  <History className="size-3" /> earlier
                </>
              ) : (
                time(r.startedAt)
              )}
            </span>
          </div>
          {r.reason && r.stage !== "done" && (
            <p className="mt-1 text-[11px] text-warning">
              <RichText text={r.reason} />
            </p>
          )}
        </div>
      </button>
      {expandable && open && r.detail && (
        <div className="px-4 pb-3 pl-11" data-testid="activity-detail">
          <ActivityDetailView d={r.detail} failed={failed} />
        </div>
      )}
    </li>
  );
}

export function ActivityList({ rows }: { rows: ActivityRow[] }) {
  const ordered = [...rows].reverse();
  return (
    <Card className="flex min-h-[180px] flex-1 flex-col overflow-hidden" data-testid="activity">
      <div className="flex items-baseline justify-between border-b px-4 py-3">
        <h2 className="text-sm font-semibold">Activity</h2>
        <span className="text-[11px] text-muted-foreground">
          {rows.length ? `${rows.length} action${rows.length === 1 ? "" : "s"} on your files` : "sandboxed"}
        </span>
      </div>
      {ordered.length === 0 ? (
        <p className="px-4 py-6 text-center text-xs text-muted-foreground">
          Every file read, search and command Voco runs on your machine shows up here, with your decision and its result.
        </p>
      ) : (
        <ScrollArea className="min-h-0 flex-1">
          <ul className="divide-y">
            {ordered.map((r) => (
              <Row key={r.id} r={r} />
            ))}
          </ul>
        </ScrollArea>
      )}
    </Card>
  );
}
