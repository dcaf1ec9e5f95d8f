import { describe, expect, it } from "vitest";
import { pageTimings } from "../src/components/LatencyCard";
import type { ServerMessage, ThreadHistory } from "../src/lib/protocol";
import { initialState, reduce, rowFailed, type AppState } from "../src/lib/state";

const open = reduce(initialState(), { kind: "connection", status: "open" });

function run(msgs: ServerMessage[], s: AppState = open, t0 = 1000): AppState {
  return msgs.reduce((st, msg, i) => reduce(st, { kind: "server", msg, at: t0 + i * 100 }), s);
}

const history = (patch: Partial<ThreadHistory> = {}): ThreadHistory => ({
  type: "thread.history",
  thread_id: "t1",
  turns: [
    {
      turn_id: "u1",
      user_text: "run the tests",
      reply_text: "Two failed.",
      interrupted: false,
      tool_actions: [
        {
          id: "c1",
          action: "execute_command",
          payload: { command: "make test" },
          status: "error",
          code: "exit_status",
          summary: "exit_status · exit 2",
          detail: { kind: "command", command: "make test", exit_code: 2, stdout: "", stderr: "boom" },
        },
      ],
    },
    { turn_id: "u2", user_text: "what can you do", reply_text: "I can open", interrupted: true, heard_text: "I can open" },
  ],
  next_before: "u1",
  ...patch,
});

describe("thread history", () => {
  it("restores turns, replies (interrupted ones cut) and activity rows", () => {
    const s = run([history()]);
    expect(s.turns.map((t) => [t.turnId, t.userText, t.restored])).toEqual([
      ["u1", "run the tests", true],
      ["u2", "what can you do", true],
    ]);
    const r2 = s.replies[s.turns[1].responseIds[0]];
    expect(r2.interrupted).toBe(true);
    expect(r2.heard).toBe("I can open");
    expect(s.activity).toHaveLength(1);
    expect(s.activity[0].restored).toBe(true);
    expect(s.activity[0].detail?.stderr).toBe("boom");
    expect(rowFailed(s.activity[0])).toBe(true);
    expect(s.history).toEqual({ nextBefore: "u1", loaded: true, loading: false });
  });

  it("a reconnect's first page replaces finished turns instead of doubling them", () => {
    let s = run([history()]);
    s = run(
      [
        { type: "transcript.final", turn_id: "live1", text: "hello" },
        { type: "agent.done", turn_id: "live1", response_id: "r1", text: "Hi.", model: "command-mode", interrupted: false },
      ],
      s,
    );
    expect(s.turns).toHaveLength(3);
    s = run([history({ turns: [...history().turns, { turn_id: "u3", user_text: "hello", reply_text: "Hi." }] })], s);
    expect(s.turns.map((t) => t.turnId)).toEqual(["u1", "u2", "u3"]);
  });

  it("an older page goes in front, once", () => {
    let s = run([history({ turns: history().turns.slice(1), next_before: "u2" })]);
    s = reduce(s, { kind: "history_requested" });
    expect(s.history.loading).toBe(true);
    const older = history({ turns: history().turns.slice(0, 1), before: "u2", next_before: null });
    s = run([older, older], s);
    expect(s.turns.map((t) => t.turnId)).toEqual(["u1", "u2"]);
    expect(s.activity).toHaveLength(1);
    expect(s.history.nextBefore).toBeNull();
  });
});

describe("transient approval sentence", () => {
  it("is shown while the approval is open and dropped once decided; never in the reply text", () => {
    let s = run([
      { type: "transcript.final", turn_id: "t1", text: "run the tests" },
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: "Running. " },
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: " I'm waiting for your approval to go ahead. ", transient: true },
      { type: "approval.request", id: "a1", action: "execute_command", payload: { command: "make test" }, reason: "runs make", roots: ["/p"] },
    ]);
    expect(s.replies.r1.text).toBe("Running. ");
    expect(s.replies.r1.transient).toContain("waiting for your approval");
    s = run([{ type: "approval.closed", id: "a1", approved: true }], s);
    expect(s.replies.r1.transient).toBe("");
    s = run([{ type: "agent.done", turn_id: "t1", response_id: "r1", text: "Running. Passed.", model: "m", interrupted: false }], s);
    expect(s.replies.r1.text).not.toContain("approval");
  });
});

describe("offline typing and stale links", () => {
  it("queued turns are kept, in order, until sent or cancelled", () => {
    let s = reduce(open, { kind: "queue", text: "first", at: 1 });
    s = reduce(s, { kind: "queue", text: "second", at: 2 });
    expect(s.outbox.map((q) => q.text)).toEqual(["first", "second"]);
    s = reduce(s, { kind: "unqueue", id: s.outbox[0].id });
    expect(s.outbox.map((q) => q.text)).toEqual(["second"]);
  });

  it("close 4401 marks the link invalid until a connection opens", () => {
    let s = reduce(open, { kind: "connection", status: "closed", code: 4401, attempt: 0, retryAt: null });
    expect(s.connection.badLink).toBe(true);
    s = reduce(s, { kind: "connection", status: "closed", code: 1006, attempt: 1, retryAt: 5 });
    expect(s.connection.badLink).toBe(true);
    s = reduce(s, { kind: "connection", status: "open" });
    expect(s.connection.badLink).toBe(false);
    const other = reduce(open, { kind: "connection", status: "closed", code: 1006, attempt: 1, retryAt: 5 });
    expect(other.connection.badLink).toBe(false);
  });
});

describe("activity outcome and latency", () => {
  it("a command that exits non-zero is a failure even when the wire status is success", () => {
    const s = run([
      { type: "activity", id: "x", action: "execute_command", payload: { command: "false" }, stage: "requested" },
      {
        type: "activity",
        id: "x",
        stage: "done",
        status: "success",
        summary: "exit 1",
        detail: { kind: "command", command: "false", exit_code: 1, stdout: "", stderr: "" },
      },
    ]);
    expect(rowFailed(s.activity[0])).toBe(true);
    const ok = run([{ type: "activity", id: "y", stage: "done", status: "success", detail: { kind: "command", exit_code: 0 } }]);
    expect(rowFailed(ok.activity[0])).toBe(false);
  });

  it("an interrupted last turn still has timings measured in the page", () => {
    const s = run([
      { type: "transcript.final", turn_id: "t1", text: "what can you do" },
      { type: "agent.delta", turn_id: "t1", response_id: "r1", text: "I can" },
      { type: "audio.start", response_id: "r1", encoding: "mp3", sample_rate: 24000 },
      { type: "halt_audio", response_id: "r1", reason: "barge_in", t_ms: 10 },
      { type: "agent.done", turn_id: "t1", response_id: "r1", text: "I can", model: "m", interrupted: true },
    ]);
    expect(s.lastMetrics).toBeNull();
    expect(pageTimings(s)).toEqual({ turnId: "t1", text: 100, audio: 200, interrupted: true, settled: true });
  });
});
