/**
 * The page's state: a pure reducer over the runtime's messages
 * (docs/ui-protocol.md) and a few local events (connection, decisions).
 */
import { APPROVAL_TIMEOUT_MS } from "./protocol";
import type {
  Activity,
  ActivityDetail,
  ActivityStage,
  ApprovalRequest,
  ApproveMode,
  AssistantState,
  HistoryTurn,
  McpAction,
  McpStatus,
  Metrics,
  Payload,
  RuntimeStatus,
  ServerMessage,
  SessionReady,
  ThreadHistory,
  TurnResumed,
} from "./protocol";
import { CLOSE_BAD_SECRET } from "./protocol";

export type ConnectionStatus = "connecting" | "open" | "closed";

export interface Turn {
  turnId: string;
  userText: string;
  final: boolean;
  responseIds: string[];
  metrics: Metrics | null;
  at: number;
  /** Rebuilt from the thread's stored history (a reload), not seen live. */
  restored: boolean;
  /** Page clock (ms) of the turn's milestones, for timings the engine did not send. */
  timing: { finalAt: number | null; firstTextAt: number | null; firstAudioAt: number | null };
  /** The engine went away before answering it: "waiting" for the runtime's word,
   * "resent" to the next engine (its new turn replaces this one), "lost" (say it again). */
  resume?: "waiting" | "resent" | "lost";
}

/** A typed turn waiting for the engine (it was offline when the user sent it). */
export interface QueuedTurn {
  id: number;
  text: string;
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
  /** Words spoken for the moment (the approval sentence): shown until decided, never kept. */
  transient: string;
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
  detail: ActivityDetail | null;
  restored: boolean;
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
    /** The runtime refused the launch secret (close 4401): the link is stale. */
    badLink: boolean;
  };
  runtime: {
    engine: RuntimeStatus["engine"] | "unknown";
    roots: string[];
    approve: RuntimeStatus["approve"] | null;
    approveChoices: ApproveMode[];
    message: string | null;
    /** The engine went away (drain, crash, at capacity): the runtime's next try. */
    reconnect: { attempt: number; retryAt: number } | null;
  };
  history: { nextBefore: string | null; loaded: boolean; loading: boolean };
  outbox: QueuedTurn[];
  nextQueueId: number;
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
  | { kind: "queue"; text: string; at?: number }
  | { kind: "unqueue"; id: number }
  | { kind: "history_requested" }
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
      badLink: false,
    },
    runtime: { engine: "unknown", roots: [], approve: null, approveChoices: [], message: null, reconnect: null },
    history: { nextBefore: null, loaded: false, loading: false },
    outbox: [],
    nextQueueId: 1,
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
    restored: false,
    timing: { finalAt: null, firstTextAt: null, firstAudioAt: null },
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
    transient: "",
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
          detail: null,
          restored: false,
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
    detail: a.detail ?? prev.detail,
    restored: a.restored ?? prev.restored,
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
  // Decided: the spoken "waiting for your approval" sentence is no longer shown.
  const replies = approvals.length === 0 ? dropTransient(s.replies) : s.replies;
  return { ...s, approvals, activity, replies };
}

function dropTransient(replies: Record<string, Reply>): Record<string, Reply> {
  if (!Object.values(replies).some((r) => r.transient)) return replies;
  const out: Record<string, Reply> = {};
  for (const [k, r] of Object.entries(replies)) out[k] = r.transient ? { ...r, transient: "" } : r;
  return out;
}

/** Mark a turn's page-clock milestone once (the first time it happens). */
function stamp(s: AppState, turnId: string, key: keyof Turn["timing"], at: number): AppState {
  const i = s.turns.findIndex((t) => t.turnId === turnId);
  if (i < 0 || s.turns[i].timing[key] !== null) return s;
  const turns = s.turns.slice();
  turns[i] = { ...turns[i], timing: { ...turns[i].timing, [key]: at } };
  return { ...s, turns };
}

function turnOf(s: AppState, responseId: string): string | null {
  return s.replies[responseId]?.turnId ?? null;
}

/** The runtime lost the engine (`runtime.status` reconnecting): nothing more comes
 * for the turns in flight. Their replies stop where they are; each unanswered turn
 * waits for the runtime's `turn.resumed` (or, spoken, stays marked). */
function engineLeft(s: AppState): AppState {
  const replies = { ...s.replies };
  const turns = s.turns.map((t) => {
    if (t.restored || t.resume !== undefined) return t;
    const open = t.responseIds.filter((id) => replies[id] && !replies[id].done);
    if (t.responseIds.length > 0 && open.length === 0) return t; // answered
    for (const id of open) {
      const r = replies[id];
      replies[id] = { ...r, done: true, transient: "", audio: r.audio === "streaming" ? "halted" : r.audio };
    }
    return { ...t, resume: "waiting" as const };
  });
  return { ...s, turns, replies, assistant: "listening", userSpeaking: false, partial: null };
}

function dropTurn(s: AppState, which: (t: Turn) => boolean): AppState {
  const i = s.turns.findIndex((t) => !t.restored && which(t));
  if (i < 0) return s;
  const replies = { ...s.replies };
  for (const id of s.turns[i].responseIds) delete replies[id];
  return { ...s, turns: s.turns.filter((_, k) => k !== i), replies };
}

/** What became of a typed turn the engine left (docs/ui-protocol.md `turn.resumed`). */
function turnResumed(s: AppState, msg: TurnResumed, at: number): AppState {
  const i = s.turns.findIndex(
    (t) => !t.restored && (msg.turn_id ? t.turnId === msg.turn_id : t.resume === "waiting" && t.userText === msg.text),
  );
  if (msg.outcome === "answered") return i < 0 ? s : dropTurn(s, (t) => t === s.turns[i]); // the history shows it
  const next =
    i < 0 ? s : { ...s, turns: s.turns.map((t, k) => (k === i ? { ...t, resume: msg.outcome === "resent" ? ("resent" as const) : ("lost" as const) } : t)) };
  if (msg.outcome === "lost")
    return addNotice(next, "warning", "turn_lost", `The engine went away twice while answering “${msg.text}”; send it again.`, false, at);
  return next;
}

/** Stored turns (and their actions) from `thread.history`: the first page
 * replaces what the page shows (it is the record); older pages go in front. */
function restoreHistory(s: AppState, h: ThreadHistory, at: number): AppState {
  const turns: Turn[] = [];
  const replies: Record<string, Reply> = {};
  const rows: ActivityRow[] = [];
  for (const t of h.turns) turns.push(...restoredTurn(t, at, replies, rows));
  const history = { nextBefore: h.next_before ?? null, loaded: true, loading: false };
  if (h.before) {
    const known = new Set(s.turns.map((t) => t.turnId));
    const older = turns.filter((t) => !known.has(t.turnId));
    const knownRows = new Set(s.activity.map((r) => r.id));
    return {
      ...s,
      turns: [...older, ...s.turns],
      replies: { ...replies, ...s.replies },
      activity: [...rows.filter((r) => !knownRows.has(r.id)), ...s.activity],
      history,
    };
  }
  // Live rows still in progress stay (an approval may be waiting); finished ones are in the record.
  const live = s.activity.filter((r) => !r.restored && r.stage !== "done");
  // ...and so do turns the engine left unanswered, until the runtime says what became of them
  const stored = new Set(turns.map((t) => t.turnId));
  const liveTurns = s.turns.filter(
    (t) =>
      !t.restored &&
      (t.responseIds.some((id) => !s.replies[id]?.done) || (t.resume !== undefined && !stored.has(t.turnId))),
  );
  const liveReplies: Record<string, Reply> = {};
  for (const t of liveTurns) for (const id of t.responseIds) if (s.replies[id]) liveReplies[id] = s.replies[id];
  return {
    ...s,
    turns: [...turns, ...liveTurns],
    replies: { ...replies, ...liveReplies },
    activity: [...rows, ...live],
    history,
  };
}

function restoredTurn(t: HistoryTurn, at: number, replies: Record<string, Reply>, rows: ActivityRow[]): Turn[] {
  const rid = `h-${t.turn_id}`;
  const hasReply = t.reply_text !== "" || t.interrupted;
  if (hasReply) {
    replies[rid] = {
      ...newReply(rid, t.turn_id),
      text: t.reply_text,
      heard: t.interrupted ? (t.heard_text ?? t.reply_text) : null,
      done: true,
      interrupted: t.interrupted ?? false,
      audio: t.interrupted ? "halted" : "ended",
    };
  }
  for (const a of t.tool_actions ?? []) {
    rows.push({
      id: `h-${a.id}`,
      action: a.action,
      payload: a.payload ?? {},
      stage: "done",
      status: a.status,
      code: a.code ?? null,
      summary: a.summary,
      reason: null,
      detail: a.detail ?? null,
      restored: true,
      decision: null,
      startedAt: at,
      updatedAt: at,
    });
  }
  return [
    {
      turnId: t.turn_id,
      userText: t.user_text,
      final: true,
      responseIds: hasReply ? [rid] : [],
      metrics: null,
      at,
      restored: true,
      timing: { finalAt: null, firstTextAt: null, firstAudioAt: null },
    },
  ];
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
          badLink: status === "open" ? false : c.badLink || action.code === CLOSE_BAD_SECRET,
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
    case "queue": {
      const q: QueuedTurn = { id: s.nextQueueId, text: action.text, at: action.at ?? Date.now() };
      return { ...s, outbox: [...s.outbox, q], nextQueueId: s.nextQueueId + 1 };
    }
    case "unqueue":
      return { ...s, outbox: s.outbox.filter((q) => q.id !== action.id) };
    case "history_requested":
      return { ...s, history: { ...s.history, loading: true } };
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
    case "transcript.final": {
      // the re-sent turn arrives under a new id: it replaces the one the engine left
      const base = s.turns.some((t) => t.turnId === msg.turn_id) ? s : dropTurn(s, (t) => t.resume === "resent" && t.userText === msg.text);
      return stamp(
        { ...base, partial: null, turns: upsertTurn(base, msg.turn_id, at, { userText: msg.text, final: true }) },
        msg.turn_id,
        "finalAt",
        at,
      );
    }
    case "turn.resumed":
      return turnResumed(s, msg, at);
    case "agent.delta": {
      const next = withReply(s, msg.response_id, msg.turn_id, at, (r) =>
        msg.transient ? { transient: r.transient + msg.text } : { text: r.text + msg.text },
      );
      return msg.transient ? next : stamp(next, msg.turn_id, "firstTextAt", at);
    }
    case "agent.done":
      return withReply(s, msg.response_id, msg.turn_id, at, (r) =>
        msg.interrupted
          ? {
              done: true,
              interrupted: true,
              heard: msg.text,
              transient: "",
              // Keep what was written (to show the cut); the heard text if nothing streamed.
              text: r.text.length >= msg.text.length ? r.text : msg.text,
              model: msg.model,
            }
          : { done: true, interrupted: false, heard: null, transient: "", text: msg.text, model: msg.model },
      );
    case "audio.start": {
      const next = withReply(s, msg.response_id, null, at, () => ({
        audio: "streaming",
        encoding: msg.encoding,
      }));
      const tid = turnOf(next, msg.response_id);
      return tid ? stamp(next, tid, "firstAudioAt", at) : next;
    }
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
    case "resume_audio":
      // a halt judged false: the same reply plays on, not interrupted
      return withReply(s, msg.response_id, null, at, () => ({
        audio: "streaming",
        haltReason: null,
      }));
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
        msg.fatal ?? false,
        at,
      );
    case "thread.history":
      return restoreHistory(s, msg, at);
    case "pong":
      return s;
    case "runtime.status":
      return {
        ...(msg.engine === "reconnecting" ? engineLeft(s) : s),
        runtime: {
          engine: msg.engine,
          roots: msg.roots ?? s.runtime.roots,
          approve: msg.approve ?? s.runtime.approve,
          approveChoices: msg.approve_choices ?? s.runtime.approveChoices,
          message: msg.message ?? null,
          reconnect:
            msg.engine === "reconnecting"
              ? { attempt: msg.attempt ?? 1, retryAt: at + (msg.retry_in_ms ?? 0) }
              : null,
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
  | "bad_link" // the runtime refused this page's launch secret
  | "offline" // the page lost the runtime
  | "engine_down"; // the runtime lost the engine

/** What the header should say the assistant is doing. */
export function presence(s: AppState): Presence {
  if (s.connection.badLink) return "bad_link";
  if (s.connection.status !== "open") return "offline";
  const engine = s.runtime.engine;
  if (engine === "disconnected" || engine === "connecting" || engine === "reconnecting") return "engine_down";
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

/** Did the action fail? A command that exited non-zero did, whatever the wire status. */
export function rowFailed(r: ActivityRow): boolean {
  if (r.stage !== "done") return false;
  if (r.status === "error" || r.status === "rejected") return true;
  const exit = r.detail?.exit_code;
  return typeof exit === "number" && exit !== 0;
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
