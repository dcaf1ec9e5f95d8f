/**
 * The frames of docs/ui-protocol.md (browser ↔ local runtime), which relays
 * the engine's messages of shared/protocol.md §4 unchanged.
 */

export type AssistantState =
  | "listening"
  | "thinking"
  | "speaking"
  | "awaiting_approval"
  | "running_tool";

export type McpAction =
  | "read_file"
  | "execute_command"
  | "list_dir"
  | "write_file"
  | "search_text"
  | (string & {});

export type McpStatus = "success" | "error" | "rejected";
export type ActivityStage = "requested" | "awaiting_approval" | "running" | "done";
export type Payload = Record<string, unknown>;

// ------------------------------------------------------------ runtime → page

export interface SessionReady {
  type: "session.ready";
  session_id: string;
  thread_id: string;
  user_id: string;
  server: { version: string; protocol: number };
}
export interface StateMsg {
  type: "state";
  value: AssistantState;
}
export interface VadSpeechStart {
  type: "vad.speech_start";
  t_ms: number;
}
export interface VadSpeechEnd {
  type: "vad.speech_end";
  t_ms: number;
}
export interface TranscriptPartial {
  type: "transcript.partial";
  turn_id: string;
  text: string;
}
export interface TranscriptFinal {
  type: "transcript.final";
  turn_id: string;
  text: string;
}
export interface AgentDelta {
  type: "agent.delta";
  turn_id: string;
  response_id: string;
  text: string;
}
export interface AgentDone {
  type: "agent.done";
  turn_id: string;
  response_id: string;
  text: string;
  model: string;
  interrupted: boolean;
}
export interface AudioStart {
  type: "audio.start";
  response_id: string;
  encoding: "mp3" | "pcm_s16le" | (string & {});
  sample_rate: number;
}
export interface AudioEnd {
  type: "audio.end";
  response_id: string;
  duration_ms: number;
}
export interface HaltAudio {
  type: "halt_audio";
  response_id: string;
  reason: "barge_in" | "interrupt" | (string & {});
  t_ms: number;
}
export interface Metrics {
  type: "metrics";
  turn_id: string;
  stt_ms?: number;
  llm_ttft_ms?: number;
  tts_ttfb_ms?: number;
  e2e_ms?: number;
  engine_overhead_ms?: number;
  audio_ms?: number;
  [k: string]: unknown;
}
export interface ErrorMsg {
  type: "error";
  code: string;
  message: string;
  fatal: boolean;
}
export interface Pong {
  type: "pong";
  id: string;
}
export interface RuntimeStatus {
  type: "runtime.status";
  engine: "connecting" | "connected" | "disconnected";
  roots: string[];
  approve: "ask" | "deny" | "all";
  message?: string | null;
}
export interface Activity {
  type: "activity";
  id: string;
  action?: McpAction;
  payload?: Payload;
  stage: ActivityStage;
  status?: McpStatus | null;
  code?: string | null;
  summary?: string | null;
  reason?: string | null;
}
export interface ApprovalRequest {
  type: "approval.request";
  id: string;
  action: McpAction;
  payload: Payload;
  reason: string;
  roots: string[];
}
export interface ApprovalClosed {
  type: "approval.closed";
  id: string;
  approved: boolean;
}

export type ServerMessage =
  | SessionReady
  | StateMsg
  | VadSpeechStart
  | VadSpeechEnd
  | TranscriptPartial
  | TranscriptFinal
  | AgentDelta
  | AgentDone
  | AudioStart
  | AudioEnd
  | HaltAudio
  | Metrics
  | ErrorMsg
  | Pong
  | RuntimeStatus
  | Activity
  | ApprovalRequest
  | ApprovalClosed;

export const SERVER_TYPES = new Set<ServerMessage["type"]>([
  "session.ready",
  "state",
  "vad.speech_start",
  "vad.speech_end",
  "transcript.partial",
  "transcript.final",
  "agent.delta",
  "agent.done",
  "audio.start",
  "audio.end",
  "halt_audio",
  "metrics",
  "error",
  "pong",
  "runtime.status",
  "activity",
  "approval.request",
  "approval.closed",
]);

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
  if (typeof type !== "string" || !SERVER_TYPES.has(type as ServerMessage["type"])) return null;
  return obj as ServerMessage;
}

// ------------------------------------------------------------ page → runtime

export type ClientMessage =
  | { type: "text.input"; text: string }
  | { type: "interrupt" }
  | { type: "audio.played"; response_id: string; played_ms: number }
  | { type: "ping"; id: string }
  | { type: "approval.decision"; id: string; approve: boolean }
  | { type: "session.restart" };

export const MAX_TEXT_INPUT = 10_000;
export const APPROVAL_TIMEOUT_MS = 120_000;
