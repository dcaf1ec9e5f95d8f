"""The reconnect policy and pending-turn bookkeeping (sans-I/O, injected clock and jitter)."""

from __future__ import annotations

import pytest

from voco.local.reconnect import GiveUp, PendingTurns, ReconnectPolicy, Resolved, Retry
from voco.protocol import messages as m


def turn(tid: str, user: str, reply: str = "ok", interrupted: bool = False) -> m.HistoryTurn:
    return m.HistoryTurn(turn_id=tid, user_text=user, reply_text=reply, interrupted=interrupted)


# ------------------------------------------------------------------ policy


def test_backoff_doubles_to_the_cap_and_resets_on_connect() -> None:
    p = ReconnectPolicy(base_s=0.5, cap_s=4.0, jitter=0.5, rng=lambda: 0.0)
    delays = []
    for i in range(6):
        d = p.closed(1012, now=float(i))
        assert isinstance(d, Retry)
        delays.append(d.delay_s)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    p.connected()
    d = p.closed(None, now=10.0)
    assert isinstance(d, Retry) and d.attempt == 1 and d.delay_s == 0.5 and d.at == 10.5


def test_jitter_shortens_within_bounds() -> None:
    full = ReconnectPolicy(base_s=2.0, jitter=0.5, rng=lambda: 1.0).closed(1006, now=0.0)
    none = ReconnectPolicy(base_s=2.0, jitter=0.5, rng=lambda: 0.0).closed(1006, now=0.0)
    assert isinstance(full, Retry) and isinstance(none, Retry)
    assert (full.delay_s, none.delay_s) == (1.0, 2.0)


@pytest.mark.parametrize("code", [1012, 1001, 1006, None, 1011, 4429, 4503])
def test_going_away_lost_and_busy_are_retried(code: int | None) -> None:
    assert isinstance(ReconnectPolicy(rng=lambda: 0.0).closed(code, now=0.0), Retry)


@pytest.mark.parametrize("code", [4400, 4401, 4402, 4403])
def test_refusals_are_fatal_with_a_clear_message(code: int) -> None:
    d = ReconnectPolicy().closed(code, now=0.0, reason="token expired")
    assert isinstance(d, GiveUp) and d.fatal
    assert "token expired" in d.message


def test_a_normal_close_is_not_resumed() -> None:
    assert isinstance(ReconnectPolicy().closed(1000, now=0.0), GiveUp)


def test_retry_after_is_a_floor() -> None:
    p = ReconnectPolicy(base_s=0.25, rng=lambda: 0.0)
    d = p.closed(4503, now=100.0, retry_after_ms=5000)
    assert isinstance(d, Retry) and d.delay_s == 5.0 and d.at == 105.0
    assert "capacity" in d.why
    # a short retry-after does not shorten the backoff
    p = ReconnectPolicy(base_s=8.0, rng=lambda: 0.0)
    d = p.closed(4503, now=0.0, retry_after_ms=100)
    assert isinstance(d, Retry) and d.delay_s == 8.0


def test_unreachable_retries_until_the_outage_bound() -> None:
    p = ReconnectPolicy(give_up_after_s=30.0, rng=lambda: 0.0)
    assert isinstance(p.unreachable(0.0, "connection refused"), Retry)
    assert isinstance(p.unreachable(29.0, "connection refused"), Retry)
    d = p.unreachable(30.0, "connection refused")
    assert isinstance(d, GiveUp) and not d.fatal and "connection refused" in d.message
    p.connected()  # a new outage starts a new bound
    assert isinstance(p.unreachable(100.0, "refused"), Retry)


# ------------------------------------------------------------ pending turns


def test_an_answered_turn_is_not_pending() -> None:
    pt = PendingTurns()
    pt.synced([])
    pt.sent("list the files")
    pt.transcript("t1", "list the files")
    assert pt.done("t1") == "list the files"
    assert pt.texts == []
    pt.lost()
    assert pt.synced([turn("h1", "list the files")]) == []


def test_an_unfinished_turn_is_resent_once() -> None:
    pt = PendingTurns()
    pt.synced([turn("h0", "earlier")])
    pt.sent("run the tests")
    pt.transcript("t1", "run the tests")
    pt.lost()
    # the engine died before finishing: no stored turn, or a user message alone
    # (turn_id: the live id the page showed it under, kept across the loss)
    assert pt.synced([turn("h0", "earlier"), turn("h1", "run the tests", reply="")]) == [
        Resolved("run the tests", "resend", turn_id="t1")
    ]
    pt.sent("run the tests", resend=True, shown_id="t1")
    pt.lost()
    assert pt.synced([turn("h0", "earlier")]) == [Resolved("run the tests", "lost", turn_id="t1")]
    assert pt.texts == []


def test_a_turn_that_finished_but_whose_done_was_lost_is_answered_from_the_thread() -> None:
    pt = PendingTurns()
    pt.synced([])
    pt.sent("open the readme")
    pt.transcript("t1", "open the readme")
    pt.lost()
    got = pt.synced([turn("h1", "open the readme", reply="Here it is.")])
    assert got == [Resolved("open the readme", "answered", "Here it is.", turn_id="t1")]
    assert pt.texts == []


def test_same_text_twice_counts_the_answers_already_seen() -> None:
    pt = PendingTurns()
    pt.synced([turn("h0", "run the tests")])  # an old one, before this client
    pt.sent("run the tests")
    pt.transcript("t1", "run the tests")
    pt.done("t1")
    pt.sent("run the tests")
    pt.transcript("t2", "run the tests")
    pt.lost()
    # stored: the old one (before the baseline) and the first of ours
    page = [turn("h0", "run the tests"), turn("h1", "run the tests")]
    assert pt.synced(page) == [Resolved("run the tests", "resend", turn_id="t2")]
    # ...but if the second had been stored too, it is answered
    pt2 = PendingTurns()
    pt2.synced([])
    pt2.sent("run the tests")
    pt2.transcript("t1", "run the tests")
    pt2.done("t1")
    pt2.sent("run the tests")
    pt2.lost()
    page = [turn("h1", "run the tests"), turn("h2", "run the tests", reply="2 passed")]
    assert pt2.synced(page) == [Resolved("run the tests", "answered", "2 passed")]


def test_an_interrupted_stored_turn_counts_as_finished() -> None:
    pt = PendingTurns()
    pt.synced([])
    pt.sent("say something long")
    pt.lost()
    got = pt.synced([turn("h1", "say something long", reply="", interrupted=True)])
    assert got == [Resolved("say something long", "answered", "")]


def test_turns_sent_on_the_new_connection_are_left_alone() -> None:
    pt = PendingTurns()
    pt.synced([])
    pt.sent("first")
    pt.lost()
    pt.sent("second")  # typed while the new connection's history was on its way
    assert pt.synced([]) == [Resolved("first", "resend")]
    assert pt.texts == ["second"]
    pt.transcript("t9", "second")
    assert pt.done("t9") == "second"


def test_a_live_id_from_the_old_connection_does_not_answer_after_a_loss() -> None:
    pt = PendingTurns()
    pt.synced([])
    pt.sent("hello")
    pt.transcript("t1", "hello")
    pt.lost()
    assert pt.done("t1") is None  # the new engine's t1 is another turn
    assert pt.texts == ["hello"]


def test_a_turn_typed_while_the_link_is_down_is_settled_by_the_next_sync() -> None:
    pt = PendingTurns()
    pt.synced([])
    pt.lost()
    pt.sent("status", orphaned=True)  # into a link known to be down
    assert pt.synced([]) == [Resolved("status", "resend")]
