/**
 * The page's state: a pure reducer over the runtime's messages
 * (docs/ui-protocol.md) and a few local events (connection, decisions).
 */
import { APPROVAL_TIMEOUT_MS } from "./protocol";
import type {
  Activity,
  ActivityStage,
  ApprovalRequest,
  AssistantState,
  McpAction,
  McpStatus,
  Metrics,
  Payload,
  RuntimeStatus,
  ServerMessage,
  SessionReady,
} from "./protocol";

export type ConnectionStatus = "connecting" | "open" | "closed";

export interface Turn {
  turnId: string;
  userText: string;
  final: boolean;
  responseIds: string[];
  metrics: Metrics | null;
  at: number;
}

export type ReplyAudio = "none" | "streaming" | "ended" | "halted";

export interface Reply {
  responseId: string;
  turnId: string;
  /** Everything the model wrote (deltas, or the final text of a complete reply). */
  text: string;
  /** For an interrupted reply: what the user actually heard. */
  heard: string | null;
  done: boolean;
  interrupted: boolean;
  model: string | null;
  audio: ReplyAudio;
  encoding: string | null;
  durationMs: number | null;
  haltReason: string | null;
}

export interface ActivityRow {
  id: string;
  action: McpAction | null;
  payload: Payload;
  stage: ActivityStage;
  status: McpStatus | null;
  code: string | null;
  summary: string | null;
  reason: string | null;
  /** The user's answer; "expired": nobody answered in time (the runtime rejected it). */
  decision: "approved" | "rejected" | "expired" | null;
  startedAt: number;
  updatedAt: number;
}

export interface Approval {
  id: string;
  action: McpAction;
  payload: Payload;
  reason: string;
  roots: string[];
  receivedAt: number;
}

export interface Notice {
  id: number;
  level: "error" | "warning" | "info";
  code: string;
  message: string;
  fatal: boolean;
  at: number;
}

export interface AppState {
  connection: {
    status: ConnectionStatus;
    attempt: number;
    retryAt: number | null;
    closeCode: number | null;
    closeReason: string | null;
    everOpened: boolean;
  };
  runtime: {
    engine: RuntimeStatus["engine"] | "unknown";
    roots: string[];
    approve: RuntimeStatus["approve"] | null;
    message: string | null;
  };
  session: Omit<SessionReady, "type"> | null;
  assistant: AssistantState;
  userSpeaking: boolean;
  partial: string | null;
  turns: Turn[];
  replies: Record<string, Reply>;
  activity: ActivityRow[];
  approvals: Approval[];
  notices: Notice[];
  lastMetrics: Metrics | null;
  halts: number;
  rttMs: number | null;
  nextNoticeId: number;
}

export type Action =
  | { kind: "server"; msg: ServerMessage; at?: number }
  | {
      kind: "connection";
      status: ConnectionStatus;
      attempt?: number;
      retryAt?: number | null;
      code?: number | null;
      reason?: string | null;
    }
  | { kind: "decided"; id: string; approve: boolean }
  | { kind: "notice"; level: Notice["level"]; code: string; message: string; at?: number }
  | { kind: "dismiss"; id: number }
  | { kind: "rtt"; ms: number }
  | { kind: "clear" };

export const MAX_NOTICES = 5;
export const MAX_TURNS = 200;
export const MAX_ACTIVITY = 200;

export function initialState(): AppState {
  return {
    connection: {
      status: "connecting",
      attempt: 0,
      retryAt: null,
      closeCode: null,
      closeReason: null,
      everOpened: false,
    },
    runtime: { engine: "unknown", roots: [], approve: null, message: null },
    session: null,
    assistant: "listening",
    userSpeaking: false,
    partial: null,
    turns: [],
    replies: {},
    activity: [],
    approvals: [],
    notices: [],
    lastMetrics: null,
    halts: 0,
    rttMs: null,
    nextNoticeId: 1,
  };
}

function upsertTurn(s: AppState, turnId: string, at: number, patch: Partial<Turn>): Turn[] {
  const i = s.turns.findIndex((t) => t.turnId === turnId);
  if (i >= 0) {
    const turns = s.turns.slice();
    turns[i] = { ...turns[i], ...patch };
    return turns;
  }
  const turn: Turn = {
    turnId,
    userText: "",
    final: false,
    responseIds: [],
    metrics: null,
    at,
    ...patch,
  };
  const turns = [...s.turns, turn];
  return turns.length > MAX_TURNS ? turns.slice(turns.length - MAX_TURNS) : turns;
}

function newReply(responseId: string, turnId: string): Reply {
  return {
    responseId,
    turnId,
    text: "",
    heard: null,
    done: false,
    interrupted: false,
    model: null,
    audio: "none",
    encoding: null,
    durationMs: null,
    haltReason: null,
  };
}

/** Ensure the reply (and its turn) exist, then patch it. */
function withReply(
  s: AppState,
  responseId: string,
  turnId: string | null,
  at: number,
  patch: (r: Reply) => Partial<Reply>,
): AppState {
  const existing = s.replies[responseId];
  const tid = existing?.turnId ?? turnId ?? "unknown";
  const base = existing ?? newReply(responseId, tid);
  const reply = { ...base, ...patch(base) };
  let turns = s.turns;
  if (!existing) {
    const t = s.turns.find((x) => x.turnId === tid);
    turns = upsertTurn(s, tid, at, {
      responseIds: t ? [...t.responseIds, responseId] : [responseId],
    });
  }
  return { ...s, turns, replies: { ...s.replies, [responseId]: reply } };
}

function addNotice(
  s: AppState,
  level: Notice["level"],
  code: string,
  message: string,
  fatal: boolean,
  at: number,
): AppState {
  const notice: Notice = { id: s.nextNoticeId, level, code, message, fatal, at };
  // The same notice again replaces the older one (no stack of repeats).
  const rest = s.notices.filter((n) => !(n.code === code && n.message === message));
  const notices = [...rest, notice].slice(-MAX_NOTICES);
  return { ...s, notices, nextNoticeId: s.nextNoticeId + 1 };
}

function upsertActivity(s: AppState, a: Activity, at: number): ActivityRow[] {
  const i = s.activity.findIndex((r) => r.id === a.id);
  const prev: ActivityRow =
    i >= 0
      ? s.activity[i]
      : {
          id: a.id,
          action: null,
          payload: {},
          stage: "requested",
          status: null,
          code: null,
          summary: null,
          reason: null,
          decision: null,
          startedAt: at,
          updatedAt: at,
        };
  // A late "requested"/"running" never moves a finished row backwards.
  const order: ActivityStage[] = ["requested", "awaiting_approval", "running", "done"];
  const stage =
    order.indexOf(a.stage) >= order.indexOf(prev.stage) || i < 0 ? a.stage : prev.stage;
  const row: ActivityRow = {
    ...prev,
    action: a.action ?? prev.action,
    payload: a.payload ?? prev.payload,
    stage,
    status: a.status ?? prev.status,
    code: a.code ?? prev.code,
    summary: a.summary ?? prev.summary,
    reason: a.reason ?? prev.reason,
    updatedAt: at,
  };
  if (stage === "running" && prev.stage === "awaiting_approval" && row.decision === null) {
    row.decision = "approved";
  }
  if (i >= 0) {
    const rows = s.activity.slice();
    rows[i] = row;
    return rows;
  }
  const rows = [...s.activity, row];
  return rows.length > MAX_ACTIVITY ? rows.slice(rows.length - MAX_ACTIVITY) : rows;
}

function decide(s: AppState, id: string, approved: boolean, at: number, closed = false): AppState {
  const pending = s.approvals.find((a) => a.id === id);
  const approvals = s.approvals.filter((a) => a.id !== id);
  const expired =
    closed && !approved && pending !== undefined && at - pending.receivedAt >= APPROVAL_TIMEOUT_MS - 2000;
  const decision: ActivityRow["decision"] = approved ? "approved" : expired ? "expired" : "rejected";
  const activity = s.activity.map((r) =>
    r.id === id && r.decision === null ? { ...r, decision, updatedAt: at } : r,
  );
  return { ...s, approvals, activity };
}

export function reduce(s: AppState, action: Action): AppState {
  switch (action.kind) {
    case "connection": {
      const c = s.connection;
      const status = action.status;
      return {
        ...s,
        connection: {
          status,
          attempt: action.attempt ?? (status === "open" ? 0 : c.attempt),
          retryAt: action.retryAt ?? null,
          closeCode: status === "open" ? null : (action.code ?? c.closeCode),
          closeReason: status === "open" ? null : (action.reason ?? c.closeReason),
          everOpened: c.everOpened || status === "open",
        },
        // What the runtime says about the engine is stale once we lost the runtime.
        runtime: status === "open" ? s.runtime : { ...s.runtime, engine: "unknown" },
        userSpeaking: status === "open" ? s.userSpeaking : false,
      };
    }
    case "decided":
      return decide(s, action.id, action.approve, Date.now());
    case "notice":
      return addNotice(s, action.level, action.code, action.message, false, action.at ?? Date.now());
    case "dismiss":
      return { ...s, notices: s.notices.filter((n) => n.id !== action.id) };
    case "rtt":
      return { ...s, rttMs: action.ms };
    case "clear":
      return { ...s, turns: [], replies: {}, partial: null, activity: [], notices: [] };
    case "server":
      return onServer(s, action.msg, action.at ?? Date.now());
  }
}

function onServer(s: AppState, msg: ServerMessage, at: number): AppState {
  switch (msg.type) {
    case "session.ready": {
      const { type: _t, ...session } = msg;
      return { ...s, session, assistant: "listening", partial: null, userSpeaking: false };
    }
    case "state":
      return { ...s, assistant: msg.value };
    case "vad.speech_start":
      return { ...s, userSpeaking: true };
    case "vad.speech_end":
      return { ...s, userSpeaking: false };
    case "transcript.partial":
      return { ...s, partial: msg.text };
    case "transcript.final":
      return {
        ...s,
        partial: null,
        turns: upsertTurn(s, msg.turn_id, at, { userText: msg.text, final: true }),
      };
    case "agent.delta":
      return withReply(s, msg.response_id, msg.turn_id, at, (r) => ({ text: r.text + msg.text }));
    case "agent.done":
      return withReply(s, msg.response_id, msg.turn_id, at, (r) =>
        msg.interrupted
          ? {
              done: true,
              interrupted: true,
              heard: msg.text,
              // Keep what was written (to show the cut); the heard text if nothing streamed.
              text: r.text.length >= msg.text.length ? r.text : msg.text,
              model: msg.model,
            }
          : { done: true, interrupted: false, heard: null, text: msg.text, model: msg.model },
      );
    case "audio.start":
      return withReply(s, msg.response_id, null, at, () => ({
        audio: "streaming",
        encoding: msg.encoding,
      }));
    case "audio.end":
      return withReply(s, msg.response_id, null, at, (r) => ({
        audio: r.audio === "halted" ? "halted" : "ended",
        durationMs: msg.duration_ms,
      }));
    case "halt_audio":
      return {
        ...withReply(s, msg.response_id, null, at, () => ({
          audio: "halted",
          haltReason: msg.reason,
        })),
        halts: s.halts + 1,
      };
    case "metrics": {
      const i = s.turns.findIndex((t) => t.turnId === msg.turn_id);
      const turns = i >= 0 ? upsertTurn(s, msg.turn_id, at, { metrics: msg }) : s.turns;
      return { ...s, turns, lastMetrics: msg };
    }
    case "error":
      return addNotice(
        s,
        msg.fatal ? "error" : "warning",
        msg.code,
        msg.message,
        msg.fatal,
        at,
      );
    case "pong":
      return s;
    case "runtime.status":
      return {
        ...s,
        runtime: {
          engine: msg.engine,
          roots: msg.roots ?? s.runtime.roots,
          approve: msg.approve ?? s.runtime.approve,
          message: msg.message ?? null,
        },
      };
    case "activity":
      return { ...s, activity: upsertActivity(s, msg, at) };
    case "approval.request": {
      const req: ApprovalRequest = msg;
      const activity = upsertActivity(
        s,
        {
          type: "activity",
          id: req.id,
          action: req.action,
          payload: req.payload,
          stage: "awaiting_approval",
          reason: req.reason,
        },
        at,
      );
      if (s.approvals.some((a) => a.id === req.id)) return { ...s, activity };
      const approval: Approval = {
        id: req.id,
        action: req.action,
        payload: req.payload ?? {},
        reason: req.reason,
        roots: req.roots ?? [],
        receivedAt: at,
      };
      return { ...s, activity, approvals: [...s.approvals, approval] };
    }
    case "approval.closed":
      return decide(s, msg.id, msg.approved, at, true);
  }
}

// ------------------------------------------------------------------ views

export type Presence =
  | AssistantState
  | "offline" // the page lost the runtime
  | "engine_down"; // the runtime lost the engine

/** What the header should say the assistant is doing. */
export function presence(s: AppState): Presence {
  if (s.connection.status !== "open") return "offline";
  if (s.runtime.engine === "disconnected" || s.runtime.engine === "connecting") return "engine_down";
  if (s.approvals.length > 0) return "awaiting_approval";
  return s.assistant;
}

/** The part of an interrupted reply that was never heard. */
export function unheardTail(r: Reply): string {
  if (!r.interrupted || r.heard === null) return "";
  const heard = r.heard.trim();
  if (heard === "") return r.text;
  if (r.text.startsWith(heard)) return r.text.slice(heard.length);
  // The engine cuts on words; compare word by word when whitespace differs.
  const hw = heard.split(/\s+/);
  const tw = r.text.trim().split(/\s+/);
  let k = 0;
  while (k < hw.length && k < tw.length && hw[k] === tw[k]) k++;
  return k === hw.length ? " " + tw.slice(k).join(" ") : "";
}

/** One short line for an MCP action: the command, or the path. */
export function describeAction(action: McpAction | null, payload: Payload): string {
  const str = (v: unknown) => (typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v));
  switch (action) {
    case "execute_command": {
      if (typeof payload.command === "string") return payload.command;
      if (Array.isArray(payload.argv)) return payload.argv.map(String).join(" ");
      return "";
    }
    case "search_text":
      return `"${str(payload.pattern)}"${payload.path ? ` in ${str(payload.path)}` : ""}`;
    case "read_file":
    case "list_dir":
    case "write_file":
      return str(payload.path);
    default:
      return str(payload.path ?? payload.command ?? "");
  }
}
