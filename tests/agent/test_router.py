"""The Model Router: a labelled set of spoken requests plus every threshold's boundary."""

from __future__ import annotations

import dataclasses

import pytest

from voco.agent.router import (
    DEFAULT_POLICY,
    RouterFeatures,
    RouterPolicy,
    extract_features,
    route_messages,
    route_model,
)
from voco.agent.tools import tool_result_content
from voco.providers.base import ChatMessage, ToolCall

# Realistic requests as a speech recogniser writes them, with the tier we want.
LABELLED: list[tuple[str, str]] = [
    # quick commands -> haiku
    ("Open the readme.", "haiku"),
    ("What's in the source folder?", "haiku"),
    ("Run the tests.", "haiku"),
    ("Git status.", "haiku"),
    ("What branch am I on?", "haiku"),
    ("Show me main dot py.", "haiku"),
    ("List the files in tests.", "haiku"),
    ("Search for TODO.", "haiku"),
    ("Stop.", "haiku"),
    ("Thanks, that's all.", "haiku"),
    ("Hello there.", "haiku"),
    ("Show the last five commits.", "haiku"),
    ("Read setup.cfg.", "haiku"),
    ("Where is the config file?", "haiku"),
    ("What can you do?", "haiku"),
    ("Find where parse config is defined.", "haiku"),
    ("Never mind.", "haiku"),
    ("Show me the diff.", "haiku"),
    ("Open the readme and tell me what it's about.", "haiku"),
    ("Can you please run npm install?", "haiku"),
    ("What's in the tests folder and the docs folder?", "haiku"),
    # reasoning, writes, several steps, long -> sonnet
    ("Refactor the session handler to use a state machine.", "sonnet"),
    ("Why is the build failing on CI?", "sonnet"),
    ("Explain how the barge-in logic works.", "sonnet"),
    ("Debug the flaky websocket test.", "sonnet"),
    ("Run the tests and then fix whatever fails.", "sonnet"),
    ("What's the difference between the sync and async clients?", "sonnet"),
    ("Should we use Postgres or SQLite for the checkpointer? Compare them.", "sonnet"),
    ("Create a new file called utils dot py with a slugify helper.", "sonnet"),
    ("Delete the old migration scripts.", "sonnet"),
    ("Rename the function get user to fetch user everywhere.", "sonnet"),
    (
        "So I have this endpoint that takes the upload from the browser and stores it in "
        "the bucket and I want it to also record the size and the content type in the "
        "database table.",
        "sonnet",
    ),
    ("Design an API for the billing webhooks.", "sonnet"),
    ("Add type hints to the audio module.", "sonnet"),
    ("Optimize the VAD loop, it's using too much CPU.", "sonnet"),
    ("The server crashes with a key error when the token expires, can you look?", "sonnet"),
    ("Review my last commit.", "sonnet"),
    ("Implement retry with backoff in the HTTP client.", "sonnet"),
    ("Is it better to stream the audio or buffer it?", "sonnet"),
    ("Why?", "sonnet"),
    ("Walk me through the request lifecycle.", "sonnet"),
    ("Search for TODO and list the files that have one.", "sonnet"),
    ("Can you fix the typo in the readme?", "sonnet"),
    ("Why does parse_config() return None when self.path is empty?", "sonnet"),
]


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage("user", text)]


def _features(**overrides: object) -> RouterFeatures:
    base = RouterFeatures(
        user_words=4,
        reasoning_markers=(),
        multi_step=False,
        comparison=False,
        code_tokens=0,
        tools_available=True,
        tool_kinds=frozenset({"read"}),
        tool_steps=1,
        context_chars=100,
        context_tokens=25,
        tool_results=0,
        turn_tool_results=0,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def test_labelled_set_exercises_every_reason() -> None:
    """Each signal the router weighs decides at least one labelled request, so the
    labelled set tests the router's reasons, not just its default."""
    reasons = {
        r.split(" (")[0].split(":")[0]
        for text, _ in LABELLED
        for r in route_messages(_user(text), tools_available=True).reasons
    }
    assert {
        "reasoning markers",
        "multi-step request",
        "asks for a comparison",
        "long request",
        "code-heavy",
        "changes files or the repository",
        "needs several tools",
        "one read-only tool step",
        "one command",
        "no tools needed",
    } <= reasons


@pytest.mark.parametrize(("text", "tier"), LABELLED)
def test_labelled_requests(text: str, tier: str) -> None:
    decision = route_messages(_user(text), tools_available=True)
    assert decision.tier == tier, decision.reasons
    assert decision.reasons


# ---------------------------------------------------------------------------- features


def test_word_count_of_latest_user_turn_only() -> None:
    messages = [
        ChatMessage("user", "one two three four five six seven"),
        ChatMessage("assistant", "ok"),
        ChatMessage("user", "Open the readme."),
    ]
    assert extract_features(messages, True).user_words == 3


def test_no_user_message_is_empty_request() -> None:
    f = extract_features([], True)
    assert f.user_words == 0 and not f.needs_tools
    assert route_model(f).tier == "haiku"


def test_markers_are_whole_words() -> None:
    # "whys" / "redesigned" / "debugger" must not fire the markers "why" / "design" / "debug"
    f = extract_features(_user("Open the whys file in redesigned debugger."), True)
    assert f.reasoning_markers == ()


def test_reasoning_markers_reported() -> None:
    f = extract_features(_user("Explain why this is slow."), True)
    assert f.reasoning_markers == ("explain", "why")
    d = route_model(f)
    assert d.tier == "sonnet" and "reasoning markers: explain, why" in d.reasons


def test_multi_step_and_comparison_flags() -> None:
    assert extract_features(_user("Build it and then deploy."), True).multi_step
    assert extract_features(_user("Compare the two parsers."), True).comparison
    assert not extract_features(_user("Open the parser."), True).comparison


def test_code_tokens_counted() -> None:
    f = extract_features(_user("Does parse_config call loadFile() in config.py?"), True)
    assert f.code_tokens >= 3
    assert extract_features(_user("Open the readme."), True).code_tokens == 0


def test_tool_kinds_and_steps() -> None:
    f = extract_features(_user("Search for TODO and list the files, then run the tests."), True)
    assert f.tool_kinds == frozenset({"search", "list", "command"})
    assert f.tool_steps == 3
    assert f.runs_commands and not f.writes
    g = extract_features(_user("Could you please delete the build folder?"), True)
    assert g.writes and g.tool_steps == 1
    h = extract_features(_user("Hello there."), True)
    assert not h.needs_tools and h.tool_steps == 0


def test_question_forms_imply_tools() -> None:
    assert extract_features(_user("What's in src?"), True).tool_kinds == {"list"}
    assert extract_features(_user("Where is the config?"), True).tool_kinds == {"search"}
    assert extract_features(_user("Which branch is this?"), True).tool_kinds == {"command"}


def test_context_length_counts_all_messages_and_tool_calls() -> None:
    call = ToolCall("c1", "read_file", {"path": "README.md"})
    messages = [
        ChatMessage("user", "x" * 40),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage(
            "tool", tool_result_content("success", {"content": "y" * 400}), tool_call_id="c1"
        ),
    ]
    f = extract_features(messages, True)
    expected = 40 + len("read_file") + len('{"path": "README.md"}') + len(messages[2].content)
    assert f.context_chars == expected
    assert f.context_tokens == -(-expected // 4)
    assert f.tool_results == 1 and f.turn_tool_results == 1


def test_turn_tool_results_reset_at_new_user_turn() -> None:
    messages = [
        ChatMessage("user", "Open the readme."),
        ChatMessage("tool", "{}", tool_call_id="a"),
        ChatMessage("user", "Thanks."),
    ]
    f = extract_features(messages, True)
    assert f.tool_results == 1 and f.turn_tool_results == 0


def test_follow_up_to_complex_request_stays_on_sonnet() -> None:
    messages = [
        ChatMessage("user", "Refactor the parser into smaller functions."),
        ChatMessage("assistant", "Should I also update the tests?"),
        ChatMessage("user", "Yes, go ahead."),
    ]
    d = route_messages(messages, True)
    assert d.tier == "sonnet" and "short follow-up to a complex request" in d.reasons


def test_follow_up_to_simple_request_is_haiku() -> None:
    messages = [
        ChatMessage("user", "Open the readme."),
        ChatMessage("assistant", "Want the next part?"),
        ChatMessage("user", "Yes."),
    ]
    assert route_messages(messages, True).tier == "haiku"


def test_long_yes_is_not_a_follow_up() -> None:
    messages = [
        ChatMessage("user", "Refactor the parser."),
        ChatMessage("assistant", "Done."),
        ChatMessage("user", "Yes, and now open the readme for me please thanks"),
    ]
    assert not extract_features(messages, True).follows_complex_turn


# ---------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(("words", "tier"), [(24, "haiku"), (25, "sonnet")])
def test_long_request_boundary(words: int, tier: str) -> None:
    assert route_model(_features(user_words=words)).tier == tier


def test_long_request_boundary_from_text() -> None:
    text = " ".join(["word"] * (DEFAULT_POLICY.long_request_words - 1))
    assert route_messages(_user(text), True).tier == "haiku"
    assert route_messages(_user(text + " more"), True).tier == "sonnet"


@pytest.mark.parametrize(("tokens", "tier"), [(2, "haiku"), (3, "sonnet")])
def test_code_token_boundary(tokens: int, tier: str) -> None:
    assert route_model(_features(code_tokens=tokens)).tier == tier


@pytest.mark.parametrize(("steps", "tier"), [(1, "haiku"), (2, "sonnet")])
def test_tool_steps_boundary(steps: int, tier: str) -> None:
    assert route_model(_features(tool_steps=steps)).tier == tier


def test_tool_steps_ignored_without_tools() -> None:
    d = route_model(_features(tool_steps=3, tools_available=False))
    assert d.tier == "haiku" and "tools unavailable" in d.reasons


def test_writes_need_sonnet_and_policy_can_turn_it_off() -> None:
    f = _features(tool_kinds=frozenset({"write"}))
    assert route_model(f).tier == "sonnet"
    assert route_model(f, RouterPolicy(writes_need_sonnet=False)).tier == "haiku"


@pytest.mark.parametrize(("tokens", "tier"), [(5999, "haiku"), (6000, "sonnet")])
def test_context_tokens_boundary(tokens: int, tier: str) -> None:
    assert route_model(_features(context_tokens=tokens)).tier == tier


def test_context_length_from_a_real_conversation() -> None:
    history = [ChatMessage("user", "a " * 1500), ChatMessage("assistant", "b " * 1500)] * 5
    short = [*history[:2], ChatMessage("user", "Open the readme.")]
    long_ = [*history, ChatMessage("user", "Open the readme.")]
    assert route_messages(short, True).tier == "haiku"
    d = route_messages(long_, True)
    assert d.tier == "sonnet" and any(r.startswith("long context") for r in d.reasons)


@pytest.mark.parametrize(("n", "tier"), [(29, "haiku"), (30, "sonnet")])
def test_total_tool_results_boundary(n: int, tier: str) -> None:
    assert route_model(_features(tool_results=n)).tier == tier


@pytest.mark.parametrize(("n", "tier"), [(3, "haiku"), (4, "sonnet")])
def test_turn_tool_results_boundary(n: int, tier: str) -> None:
    assert route_model(_features(turn_tool_results=n, tool_results=n)).tier == tier


def test_custom_policy_thresholds_and_markers() -> None:
    policy = RouterPolicy(long_request_words=3, complex_markers=frozenset({"readme"}))
    f = extract_features(_user("Open the readme."), True, policy)
    assert f.reasoning_markers == ("readme",)
    d = route_model(f, policy)
    assert d.tier == "sonnet"
    assert "long request (3 words >= 3)" in d.reasons


def test_haiku_reasons_are_descriptive() -> None:
    d = route_messages(_user("Run the tests."), True)
    assert d.tier == "haiku"
    assert d.reasons[0] == "short request (3 words)"
    assert "one command" in d.reasons
    d2 = route_messages(_user("Hello."), True)
    assert "no tools needed" in d2.reasons
