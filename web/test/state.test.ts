import { describe, expect, it } from "vitest";
import type { ServerMessage } from "../src/lib/protocol";
import { parseServerMessage, SERVER_TYPES } from "../src/lib/protocol";
import {
  describeAction,
  initialState,
  MAX_NOTICES,
  presence,
  reduce,
  unheardTail,
  type Action,
  type AppState,
} from "../src/lib/state";

const open = reduce(initialState(), { kind: "connection", status: "open" });

function run(msgs: ServerMessage[], s: AppState = open): AppState {
  return msgs.reduce((st, msg, i) => reduce(st, { kind: "server", msg, at: 1000 + i }), s);
}

describe("protocol parsing", () => {
  it("accepts every runtime → page type and nothing else", () => {
    expect(SERVER_TYPES.size).toBe(21);
    expect(SERVER_TYPES.has("turn.resumed")).toBe(true);
    expect(parseServerMessage('{"type":"state","value":"thinking"}')).toEqual({ type: "state", value: "thinking" });
    expect(parseServerMessage('{"type":"mcp.request","id":"1"}')).toBeNull(); // never shown to the page
    expect(parseServerMessage("not json")).toBeNull();
    expect(parseServerMessage("[1]")).toBeNull();
    expect(parseServerMessage('{"type":7}')).toBeNull();
  });
});

describe("reducer", () => {
  it("session.ready stores the session and resets transient state", () => {
    const s = run([
      { type: "transcript.partial", turn_id: "pending", text: "hel" },
      { type: "state", value: "thinking" },
      { type: "session.ready", session_id: "s1", thread_id: "t1", user_id: "u", server: { version: "0.1", protocol: 1 } },
    ]);
    expect(s.session?.thread_id).toBe("t1");
    expect(s.partial).toBeNull();
    expect(s.assistant).toBe("listening");
  });

  it("state drives the presence; approvals and connection override it", () => {
    for (const v of ["listening", "thinking", "speaking", "awaiting_approval", "running_tool"] as const) {
      const s = run([{ type: "runtime.status", engine: "connected", roots: ["/p"], approve: "ask" }, { type: "state", value: v }]);
      expect(s.assistant).toBe(v);
      expect(presence(s)).toBe(v);
    }
    const closed = reduce(run([{ type: "state", value: "speaking" }]), { kind: "connection", status: "closed", attempt: 1, retryAt: 5 });
    expect(presence(closed)).toBe("offline");
    const engineDown = run([{ type: "runtime.status", engine: "disconnected", roots: [], approve: "ask", message: "gone" }]);
    expect(presence(engineDown)).toBe("engine_down");
    expect(engineDown.runtime.message).toBe("gone");
  });

  it("vad.speech_start / speech_end mark the user speaking", () => {
    let s = run([{ type: "vad.speech_start", t_ms: 100 }]);
    expect(s.userSpeaking).toBe(true);
    s = run([{ type: "vad.speech_end", t_ms: 900 }], s);
    expect(s.userSpeaking).toBe(false);
  });

  it("transcript.partial then transcript.final (and a joined turn replaces the text)", () => {
    let s = run([
      { type: "transcript.partial", turn_id: "pending", text: "run the" },
      { type: "transcript.partial", turn_id: "pending", text: "run the tests" },
    ]);
    expect(s.partial).toBe("run the tests");
    s = run([{ type: "transcript.final", turn_id: "t1", text: "run the tests" }], s);
    expect(s.partial).toBeNull();
    expect(s.turns).toHaveLength(1);
    expect(s.turns[0]).toMatchObject({ turnId: "t1", userText: "run the tests", final: true });
    s = run([{ type: "transcript.final", turn_id: "t1", text: "run the tests please" }], s);
    expect(s.turns).toHaveLength(1);
    expect(s.turns[0].userText).toBe("run the tests please");
  });

  it("agent.delta streams a reply into its turn; agent.done completes it", () => {
    let s = run([
      { type: "transcript.final", turn_id: "t1", text: "hi" },
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: "Hello" },
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: " there." },
    ]);
    expect(s.turns[0].responseIds).toEqual(["r1"]);
    expect(s.replies.r1).toMatchObject({ text: "Hello there.", done: false });
    s = run([{ type: "agent.done", turn_id: "t1", response_id: "r1", text: "Hello there.", model: "m", interrupted: false }], s);
    expect(s.replies.r1).toMatchObject({ done: true, interrupted: false, model: "m" });
  });

  it("an interrupted reply keeps what was written and records what was heard (a second done supersedes)", () => {
    let s = run([
      { type: "transcript.final", turn_id: "t1", text: "explain" },
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: "One two three four five." },
      { type: "agent.done", turn_id: "t1", response_id: "r1", text: "One two three four five.", model: "m", interrupted: false },
      { type: "audio.start", response_id: "r1", encoding: "mp3", sample_rate: 24000 },
      { type: "halt_audio", response_id: "r1", reason: "barge_in", t_ms: 5000 },
      { type: "agent.done", turn_id: "t1", response_id: "r1", text: "One two", model: "m", interrupted: true },
    ]);
    const r = s.replies.r1;
    expect(r).toMatchObject({ interrupted: true, heard: "One two", audio: "halted", haltReason: "barge_in" });
    expect(unheardTail(r)).toBe(" three four five.");
    expect(s.halts).toBe(1);
    // audio.end after the halt does not un-halt it
    s = run([{ type: "audio.end", response_id: "r1", duration_ms: 800 }], s);
    expect(s.replies.r1.audio).toBe("halted");
  });

  it("resume_audio after a false barge-in: the same reply streams again, not interrupted", () => {
    let s = run([
      { type: "transcript.final", turn_id: "t1", text: "explain" },
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: "One two three." },
      { type: "audio.start", response_id: "r1", encoding: "mp3", sample_rate: 24000 },
      { type: "halt_audio", response_id: "r1", reason: "barge_in", t_ms: 5000 },
      { type: "resume_audio", response_id: "r1", from_ms: 700, encoding: "mp3", sample_rate: 24000, t_ms: 5400 },
    ]);
    expect(s.replies.r1).toMatchObject({ audio: "streaming", haltReason: null, interrupted: false });
    s = run([{ type: "audio.end", response_id: "r1", duration_ms: 2000 }], s);
    expect(s.replies.r1.audio).toBe("ended");
  });

  it("agent.done for a reply with no deltas creates it", () => {
    const s = run([{ type: "agent.done", turn_id: "t9", response_id: "r9", text: "Done.", model: "m", interrupted: false }]);
    expect(s.turns.map((t) => t.turnId)).toEqual(["t9"]);
    expect(s.replies.r9.text).toBe("Done.");
  });

  it("audio.start / audio.end track the reply's audio", () => {
    let s = run([
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: "Hi" },
      { type: "audio.start", response_id: "r1", encoding: "pcm_s16le", sample_rate: 24000 },
    ]);
    expect(s.replies.r1).toMatchObject({ audio: "streaming", encoding: "pcm_s16le" });
    s = run([{ type: "audio.end", response_id: "r1", duration_ms: 1234 }], s);
    expect(s.replies.r1).toMatchObject({ audio: "ended", durationMs: 1234 });
  });

  it("metrics attach to their turn and become the latest", () => {
    const s = run([
      { type: "transcript.final", turn_id: "t1", text: "x" },
      { type: "metrics", turn_id: "t1", stt_ms: 80, llm_ttft_ms: 5, tts_ttfb_ms: 90, e2e_ms: 300 },
    ]);
    expect(s.turns[0].metrics?.e2e_ms).toBe(300);
    expect(s.lastMetrics?.stt_ms).toBe(80);
  });

  it("errors become notices (fatal = error), repeats collapse, at most a few kept", () => {
    let s = run([
      { type: "error", code: "stt_failed", message: "no speech model", fatal: false },
      { type: "error", code: "stt_failed", message: "no speech model", fatal: false },
      { type: "error", code: "forbidden", message: "nope", fatal: true },
    ]);
    expect(s.notices.map((n) => [n.code, n.level])).toEqual([
      ["stt_failed", "warning"],
      ["forbidden", "error"],
    ]);
    for (let i = 0; i < 10; i++) s = run([{ type: "error", code: `c${i}`, message: "m", fatal: false }], s);
    expect(s.notices).toHaveLength(MAX_NOTICES);
    const id = s.notices[0].id;
    s = reduce(s, { kind: "dismiss", id });
    expect(s.notices.some((n) => n.id === id)).toBe(false);
  });

  it("pong changes nothing (round trip is measured by the client)", () => {
    const s = run([{ type: "pong", id: "p1" }]);
    expect(s).toEqual(open);
    expect(reduce(s, { kind: "rtt", ms: 12 }).rttMs).toBe(12);
  });

  it("runtime.status reports the engine, the roots and the approval mode", () => {
    const s = run([
      { type: "runtime.status", engine: "connecting", roots: ["/a", "/b"], approve: "deny", approve_choices: ["ask", "deny"] },
    ]);
    expect(s.runtime).toEqual({
      engine: "connecting",
      roots: ["/a", "/b"],
      approve: "deny",
      approveChoices: ["ask", "deny"],
      message: null,
      reconnect: null,
    });
  });

  it("runtime.status reconnecting: the engine is down, with the runtime's next attempt", () => {
    const s = run([
      { type: "runtime.status", engine: "reconnecting", roots: [], approve: "ask",
        message: "the engine is going away (drain or restart)", attempt: 2, retry_in_ms: 1500 },
    ]);
    expect(presence(s)).toBe("engine_down");
    expect(s.runtime.reconnect?.attempt).toBe(2);
    expect(s.runtime.reconnect!.retryAt).toBeGreaterThanOrEqual(1500);
    const back = run([{ type: "runtime.status", engine: "connected", roots: [], approve: "ask" }], s);
    expect(back.runtime.reconnect).toBeNull();
    expect(presence(back)).not.toBe("engine_down");
  });

  it("activity rows merge progress by id and never move backwards", () => {
    let s = run([
      { type: "activity", id: "m1", action: "execute_command", payload: { command: "make test" }, stage: "requested" },
      { type: "activity", id: "m1", stage: "awaiting_approval", reason: "runs a build tool" },
    ]);
    expect(s.activity[0]).toMatchObject({ action: "execute_command", stage: "awaiting_approval", reason: "runs a build tool" });
    s = run(
      [
        { type: "activity", id: "m1", stage: "running", reason: null },
        { type: "activity", id: "m1", action: "execute_command", payload: { command: "make test" }, stage: "done", status: "success", summary: "exit 0" },
        { type: "activity", id: "m1", stage: "running" },
      ],
      s,
    );
    expect(s.activity).toHaveLength(1);
    expect(s.activity[0]).toMatchObject({ stage: "done", status: "success", summary: "exit 0", decision: "approved" });
  });

  it("approval.request queues a prompt; the user's decision or approval.closed removes it", () => {
    const req = (id: string): ServerMessage => ({
      type: "approval.request",
      id,
      action: "write_file",
      payload: { path: "a.txt", content: "x" },
      reason: "writes a file",
      roots: ["/p"],
    });
    let s = run([req("a1"), req("a2"), req("a1")]);
    expect(s.approvals.map((a) => a.id)).toEqual(["a1", "a2"]);
    expect(presence(run([{ type: "runtime.status", engine: "connected", roots: [], approve: "ask" }], s))).toBe("awaiting_approval");
    expect(s.activity.find((r) => r.id === "a1")?.stage).toBe("awaiting_approval");
    s = reduce(s, { kind: "decided", id: "a1", approve: false });
    expect(s.approvals.map((a) => a.id)).toEqual(["a2"]);
    expect(s.activity.find((r) => r.id === "a1")?.decision).toBe("rejected");
    s = run([{ type: "approval.closed", id: "a1", approved: false }, { type: "approval.closed", id: "a2", approved: true }], s);
    expect(s.approvals).toEqual([]);
    expect(s.activity.find((r) => r.id === "a1")?.decision).toBe("rejected"); // first decision stands
    expect(s.activity.find((r) => r.id === "a2")?.decision).toBe("approved");
  });

  it("connection changes: offline clears the engine state, reopening resets the attempt", () => {
    let s = run([{ type: "runtime.status", engine: "connected", roots: ["/p"], approve: "ask" }]);
    s = reduce(s, { kind: "connection", status: "closed", code: 1006, attempt: 3, retryAt: 99 });
    expect(s.connection).toMatchObject({ status: "closed", attempt: 3, retryAt: 99, closeCode: 1006, everOpened: true });
    expect(s.runtime.engine).toBe("unknown");
    expect(s.runtime.roots).toEqual(["/p"]);
    s = reduce(s, { kind: "connection", status: "open" });
    expect(s.connection).toMatchObject({ status: "open", attempt: 0, closeCode: null });
  });

  it("an approval nobody answered is marked expired when the runtime closes it", () => {
    const req: ServerMessage = { type: "approval.request", id: "e", action: "execute_command", payload: { command: "make" }, reason: "r", roots: [] };
    let s = reduce(open, { kind: "server", msg: req, at: 0 });
    s = reduce(s, { kind: "server", msg: { type: "approval.closed", id: "e", approved: false }, at: 120_000 });
    expect(s.activity[0].decision).toBe("expired");
    expect(s.approvals).toEqual([]);
  });

  it("approvals survive a reconnect (the runtime still waits for a decision)", () => {
    let s = run([{ type: "approval.request", id: "x", action: "execute_command", payload: { command: "rm -rf build" }, reason: "deletes", roots: [] }]);
    s = reduce(s, { kind: "connection", status: "closed" });
    s = reduce(s, { kind: "connection", status: "open" });
    expect(s.approvals.map((a) => a.id)).toEqual(["x"]);
  });

  it("local notices and clear", () => {
    let s = reduce(open, { kind: "notice", level: "error", code: "mic_denied", message: "denied" } as Action);
    expect(s.notices[0]).toMatchObject({ code: "mic_denied", level: "error", fatal: false });
    s = run([{ type: "transcript.final", turn_id: "t", text: "x" }], s);
    s = reduce(s, { kind: "clear" });
    expect(s.turns).toEqual([]);
    expect(s.notices).toEqual([]);
  });
});

describe("views", () => {
  it("describes actions in one line", () => {
    expect(describeAction("execute_command", { command: "make test" })).toBe("make test");
    expect(describeAction("execute_command", { argv: ["git", "status"] })).toBe("git status");
    expect(describeAction("read_file", { path: "src/a.py" })).toBe("src/a.py");
    expect(describeAction("search_text", { pattern: "TODO", path: "src" })).toBe('"TODO" in src');
  });

  it("computes the unheard tail word by word when spacing differs", () => {
    const base = {
      responseId: "r",
      turnId: "t",
      done: true,
      interrupted: true,
      model: null,
      audio: "halted" as const,
      transient: "",
      encoding: null,
      durationMs: null,
      haltReason: null,
    };
    expect(unheardTail({ ...base, text: "Alpha  beta gamma", heard: "Alpha beta" })).toBe(" gamma");
    expect(unheardTail({ ...base, text: "Alpha beta", heard: "" })).toBe("Alpha beta");
    expect(unheardTail({ ...base, interrupted: false, text: "Alpha", heard: null })).toBe("");
  });
});

describe("the engine goes away mid-turn (runtime.status reconnecting, turn.resumed)", () => {
  const asked: ServerMessage[] = [
    { type: "runtime.status", engine: "connected", roots: [], approve: "ask" },
    { type: "transcript.final", turn_id: "t1", text: "run the tests" },
    { type: "agent.delta", turn_id: "t1", response_id: "r1", text: "Running" },
    { type: "audio.start", response_id: "r1", encoding: "mp3", sample_rate: 24000 },
  ];
  const gone: ServerMessage = {
    type: "runtime.status", engine: "reconnecting", roots: [], approve: "ask",
    message: "the engine is going away (drain or restart)", attempt: 1, retry_in_ms: 250,
  };
  const back: ServerMessage[] = [
    { type: "runtime.status", engine: "connected", roots: [], approve: "ask" },
    { type: "thread.history", thread_id: "th", before: null, turns: [], next_before: null },
  ];

  it("an unanswered turn waits, its reply stops where it was", () => {
    const s = run([...asked, gone]);
    expect(s.turns.map((t) => [t.turnId, t.resume])).toEqual([["t1", "waiting"]]);
    expect(s.replies.r1.done).toBe(true);
    expect(s.replies.r1.audio).toBe("halted");
    expect(s.assistant).toBe("listening");
    expect(presence(s)).toBe("engine_down");
  });

  it("a re-sent turn is replaced by the new engine's answer, shown once", () => {
    let s = run([...asked, gone, ...back]);
    expect(s.turns.map((t) => t.turnId)).toEqual(["t1"]); // kept through the history
    s = run([{ type: "turn.resumed", text: "run the tests", outcome: "resent", turn_id: "t1" }], s);
    expect(s.turns[0].resume).toBe("resent");
    s = run(
      [
        { type: "transcript.final", turn_id: "t9", text: "run the tests" },
        { type: "agent.done", turn_id: "t9", response_id: "r9", text: "3 passed", model: "m", interrupted: false },
      ],
      s,
    );
    expect(s.turns.map((t) => [t.turnId, t.userText, t.resume])).toEqual([["t9", "run the tests", undefined]]);
    expect(s.replies.r1).toBeUndefined();
    expect(s.replies.r9.text).toBe("3 passed");
  });

  it("a turn the thread shows finished is dropped for the stored one", () => {
    const stored: ServerMessage = {
      type: "thread.history", thread_id: "th", before: null, next_before: null,
      turns: [{ turn_id: "h1", user_text: "run the tests", reply_text: "3 passed", interrupted: false }],
    };
    let s = run([...asked, gone, back[0], stored]);
    s = run([{ type: "turn.resumed", text: "run the tests", outcome: "answered", turn_id: "t1", reply: "3 passed" }], s);
    expect(s.turns.map((t) => [t.turnId, t.restored])).toEqual([["h1", true]]);
  });

  it("a turn lost twice stays, marked, with a notice to send it again", () => {
    let s = run([...asked, gone, ...back]);
    s = run([{ type: "turn.resumed", text: "run the tests", outcome: "lost", turn_id: "t1" }], s);
    expect(s.turns[0].resume).toBe("lost");
    expect(s.notices.some((n) => n.code === "turn_lost" && n.message.includes("run the tests"))).toBe(true);
  });

  it("a finished turn is not touched by the engine going away", () => {
    const s = run([
      ...asked,
      { type: "agent.done", turn_id: "t1", response_id: "r1", text: "Running: 3 passed", model: "m", interrupted: false },
      gone,
    ]);
    expect(s.turns[0].resume).toBeUndefined();
  });
});
