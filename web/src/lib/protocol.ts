/**
 * The frames of docs/ui-protocol.md (browser ↔ local runtime), which relays
 * the engine's messages of docs/protocol.md unchanged. Every type comes from
 * `wire.gen.ts`, generated from the pydantic models (scripts/gen_ts_types.py);
 * this file only names them for the page and parses frames.
 */
import {
  pageMessageTypes,
  type Activity,
  type BrowserMessage,
  type PageMessage,
  type RuntimeStatus,
  type StateMsg,
} from "./wire.gen";

export type {
  Activity,
  ActivityDetail,
  AgentDelta,
  AgentDone,
  ApprovalClosed,
  ApprovalRequest,
  AudioEnd,
  AudioStart,
  ErrorMsg,
  HaltAudio,
  ResumeAudio,
  HistoryToolAction,
  HistoryTurn,
  LlmInfo,
  Metrics,
  Pong,
  RuntimeStatus,
  SessionReady,
  StateMsg,
  ThreadHistory,
  TranscriptFinal,
  TranscriptPartial,
  TurnResumed,
  VoiceInfo,
} from "./wire.gen";

export type AssistantState = StateMsg["value"];
export type McpAction = string;
export type McpStatus = NonNullable<Activity["status"]>;
export type ActivityStage = Activity["stage"];
export type ApproveMode = RuntimeStatus["approve"];
export type Payload = Record<string, unknown>;

/** What the runtime sends the page. */
export type ServerMessage = PageMessage;
/** What the page sends the runtime. */
export type ClientMessage = BrowserMessage;

export const SERVER_TYPES = new Set<string>(pageMessageTypes);

/** Parse a text frame; null when it is not a JSON object with a known `type`. */
export function parseServerMessage(text: string): ServerMessage | null {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return null;
  const type = (obj as { type?: unknown }).type;
  if (typeof type !== "string" || !SERVER_TYPES.has(type)) return null;
  return obj as ServerMessage;
}

export const MAX_TEXT_INPUT = 10_000;
export const APPROVAL_TIMEOUT_MS = 120_000;
/** /ui close code for a wrong or stale launch secret (ui_messages.CLOSE_BAD_SECRET). */
export const CLOSE_BAD_SECRET = 4401;
export const HISTORY_PAGE = 20;
