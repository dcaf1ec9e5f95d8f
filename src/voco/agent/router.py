"""The seed's Model Router node (§3) as a pure, tested function.

The seed routes each model call between a strong tier (``"sonnet"``) and a fast
one (``"haiku"``) on three signals: message complexity, tool requirements and
context length. Voice turns are mostly short commands ("open the readme", "run
the tests") where first-token latency matters more than depth, so the default is
``haiku`` and ``sonnet`` must be *earned* by an explicit signal. Every threshold
lives in :class:`RouterPolicy` so that it can be tuned (and tested at its
boundary) without touching the logic, and every decision carries the reasons the
engine logs, so a surprising route can be explained from the log alone.

The features are computed from the conversation only (no model call): the router
runs before every model step, including the steps inside a tool loop, and must
cost microseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from voco.agent.utterance import VERBS, phrases, split_clauses, strip_leading_fillers
from voco.providers.base import ChatMessage

Tier = Literal["sonnet", "haiku"]


def _phrases(text: str) -> frozenset[str]:
    """ "a, b c, d" → {"a", "b c", "d"}: long vocabularies stay readable."""
    return frozenset(phrases(text))


# Fillers, leading verbs and the clause splitter are shared with the command mode
# (:mod:`voco.agent.utterance`): a verb means the same tool kind to both.

# Question forms that imply a tool wherever they appear in a clause.
_TOOL_PHRASES: dict[str, str] = {
    **dict.fromkeys(_phrases("what's in, what is in, whats in"), "list"),
    **dict.fromkeys(_phrases("where is, where's, where are"), "search"),
    **dict.fromkeys(_phrases("what branch, which branch, what changed, git"), "command"),
}

_CODE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+\b"),  # snake_case
    re.compile(r"\b[a-z]+[A-Z][A-Za-z0-9]*\b"),  # camelCase
    re.compile(r"\b[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*\b"),  # PascalCase
    re.compile(r"\b\w+\("),  # call(
    re.compile(r"\b[A-Za-z_]\w*\.[A-Za-z_]\w*\b"),  # module.attr, file.ext
    re.compile(r"==|!=|->|=>|::|[{}\[\]`]"),  # operators and brackets
)


@dataclass(frozen=True)
class RouterPolicy:
    """Every threshold the router uses, explicit so it can be tuned and tested.

    Markers are matched as whole lowercase words or phrases in the latest user turn.
    """

    long_request_words: int = 25
    code_tokens_for_sonnet: int = 3
    tool_steps_for_sonnet: int = 2
    writes_need_sonnet: bool = True
    context_tokens_for_sonnet: int = 6000
    chars_per_token: int = 4
    tool_results_for_sonnet: int = 30  # a long, tool-heavy session (size is in context_tokens)
    turn_tool_results_for_sonnet: int = 4
    follow_up_max_words: int = 6
    complex_markers: frozenset[str] = _phrases(
        "refactor, why, design, explain, debug, architecture, optimize, optimise, implement, "
        "rewrite, migrate, analyze, analyse, review, investigate, diagnose, bug, "
        "race condition, deadlock, memory leak, performance, root cause, traceback, "
        "stack trace, exception, crash, crashes, crashing, failing, broken, doesn't work, "
        "not working, walk me through, how does, how should, what would happen, what if, "
        "plan, strategy, best way, trade-off, tradeoff, trade-offs, tradeoffs"
    )
    multi_step_markers: frozenset[str] = _phrases(
        "and then, then, after that, afterwards, once that's done, once you're done, "
        "step by step, followed by"
    )
    comparison_markers: frozenset[str] = _phrases(
        "compare, comparison, versus, vs, difference between, differences between, better, "
        "worse, pros and cons, instead of, rather than, which is faster, or should"
    )
    follow_up_phrases: frozenset[str] = _phrases(
        "yes, yeah, yep, sure, ok, okay, go ahead, do it, continue, keep going, go on, "
        "sounds good, please do, that works"
    )


DEFAULT_POLICY = RouterPolicy()


@dataclass(frozen=True)
class RouterFeatures:
    """What the router looks at, computed by :func:`extract_features`."""

    # 1. message complexity (latest user turn)
    user_words: int
    reasoning_markers: tuple[str, ...]
    multi_step: bool
    comparison: bool
    code_tokens: int
    # 2. tool requirements
    tools_available: bool
    tool_kinds: frozenset[str]  # "read" | "list" | "search" | "command" | "write"
    tool_steps: int  # clauses of the request that each need a tool
    # 3. context length
    context_chars: int
    context_tokens: int
    tool_results: int  # in the whole conversation
    turn_tool_results: int  # since the latest user turn (a tool loop in progress)
    # a short "yes, go ahead" after a complex request stays on the complex tier
    follows_complex_turn: bool = False

    @property
    def needs_tools(self) -> bool:
        return bool(self.tool_kinds)

    @property
    def writes(self) -> bool:
        return "write" in self.tool_kinds

    @property
    def runs_commands(self) -> bool:
        return "command" in self.tool_kinds


@dataclass(frozen=True)
class RouteDecision:
    tier: Tier
    reasons: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------- features


def _normalise(text: str) -> str:
    """Lowercase, unify apostrophes, keep words; padded so ``f" {p} " in`` matches words."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9'\- ]+", " ", text)
    return " " + " ".join(text.split()) + " "


def _markers(padded: str, markers: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(m for m in markers if f" {m} " in padded))


def _word_count(text: str) -> int:
    return sum(1 for w in text.split() if any(c.isalnum() for c in w))


def _code_tokens(text: str) -> int:
    found: set[str] = set()
    for pattern in _CODE_PATTERNS:
        found.update(m.group(0) for m in pattern.finditer(text))
    return len(found)


def _tool_needs(text: str) -> tuple[frozenset[str], int]:
    """The tool kinds a request needs and how many of its clauses need one."""
    kinds: set[str] = set()
    steps = 0
    lowered = text.lower().replace("\u2019", "'")
    for raw in split_clauses(lowered):
        clause = strip_leading_fillers(" ".join(re.sub(r"[^a-z0-9' \-]+", " ", raw).split()))
        if not clause:
            continue
        verb = VERBS.get(clause.split()[0])
        kind: str | None = verb.kind if verb else None
        if kind is None:
            padded = f" {clause} "
            kind = next((k for p, k in _TOOL_PHRASES.items() if f" {p} " in padded), None)
        if kind is not None:
            kinds.add(kind)
            steps += 1
    return frozenset(kinds), steps


def _message_chars(message: ChatMessage) -> int:
    chars = len(message.content)
    for call in message.tool_calls:
        chars += len(call.name) + len(json.dumps(call.arguments, ensure_ascii=False))
    return chars


def _is_complex_request(text: str, policy: RouterPolicy) -> bool:
    padded = _normalise(text)
    kinds, steps = _tool_needs(text)
    return bool(
        _markers(padded, policy.complex_markers)
        or _markers(padded, policy.multi_step_markers)
        or _markers(padded, policy.comparison_markers)
        or _word_count(text) >= policy.long_request_words
        or (policy.writes_need_sonnet and "write" in kinds)
        or steps >= policy.tool_steps_for_sonnet
    )


def extract_features(
    messages: list[ChatMessage],
    tools_available: bool,
    policy: RouterPolicy = DEFAULT_POLICY,
) -> RouterFeatures:
    """Compute the router's features from the conversation so far.

    The latest user message is "the request"; everything after it is the tool loop
    of the current turn. ``policy`` supplies the marker vocabularies.
    """
    user_indices = [i for i, m in enumerate(messages) if m.role == "user"]
    last_user = user_indices[-1] if user_indices else -1
    text = messages[last_user].content if last_user >= 0 else ""
    padded = _normalise(text)
    kinds, steps = _tool_needs(text)

    follows_complex = False
    words = _word_count(text)
    if len(user_indices) >= 2 and words <= policy.follow_up_max_words:
        stripped = padded.strip().strip("'-").strip()
        starts_follow_up = any(
            stripped == p or stripped.startswith(p + " ") for p in policy.follow_up_phrases
        )
        if starts_follow_up:
            follows_complex = _is_complex_request(messages[user_indices[-2]].content, policy)

    chars = sum(_message_chars(m) for m in messages)
    tool_results = sum(1 for m in messages if m.role == "tool")
    turn_tool_results = sum(1 for m in messages[last_user + 1 :] if m.role == "tool")
    return RouterFeatures(
        user_words=words,
        reasoning_markers=_markers(padded, policy.complex_markers),
        multi_step=bool(_markers(padded, policy.multi_step_markers)),
        comparison=bool(_markers(padded, policy.comparison_markers)),
        code_tokens=_code_tokens(text),
        tools_available=tools_available,
        tool_kinds=kinds,
        tool_steps=steps,
        context_chars=chars,
        context_tokens=-(-chars // max(1, policy.chars_per_token)),
        tool_results=tool_results,
        turn_tool_results=turn_tool_results,
        follows_complex_turn=follows_complex,
    )


# ---------------------------------------------------------------------------- decision


def route_model(features: RouterFeatures, policy: RouterPolicy = DEFAULT_POLICY) -> RouteDecision:
    """Pick the tier for the next model call, with the reasons for the log.

    ``sonnet`` if any complexity, tool or context signal crosses its threshold,
    else ``haiku`` (the latency-friendly default for voice commands).
    """
    f, p = features, policy
    why: list[str] = []
    # 1. message complexity
    if f.reasoning_markers:
        why.append("reasoning markers: " + ", ".join(f.reasoning_markers))
    if f.multi_step:
        why.append("multi-step request")
    if f.comparison:
        why.append("asks for a comparison")
    if f.user_words >= p.long_request_words:
        why.append(f"long request ({f.user_words} words >= {p.long_request_words})")
    if f.code_tokens >= p.code_tokens_for_sonnet:
        why.append(f"code-heavy ({f.code_tokens} code tokens >= {p.code_tokens_for_sonnet})")
    if f.follows_complex_turn:
        why.append("short follow-up to a complex request")
    # 2. tool requirements
    if p.writes_need_sonnet and f.writes:
        why.append("changes files or the repository")
    if f.tools_available and f.tool_steps >= p.tool_steps_for_sonnet:
        why.append(f"needs several tools ({f.tool_steps} steps >= {p.tool_steps_for_sonnet})")
    # 3. context length
    if f.context_tokens >= p.context_tokens_for_sonnet:
        why.append(f"long context (~{f.context_tokens} tokens >= {p.context_tokens_for_sonnet})")
    if f.tool_results >= p.tool_results_for_sonnet:
        why.append(f"many tool results ({f.tool_results} >= {p.tool_results_for_sonnet})")
    if f.turn_tool_results >= p.turn_tool_results_for_sonnet:
        why.append(
            f"deep tool loop ({f.turn_tool_results} results this turn"
            f" >= {p.turn_tool_results_for_sonnet})"
        )
    if why:
        return RouteDecision("sonnet", tuple(why))

    quick = [f"short request ({f.user_words} words)", "no reasoning markers"]
    if not f.needs_tools:
        quick.append("no tools needed")
    elif not f.tools_available:
        quick.append("tools unavailable")
    else:
        quick.append("one read-only tool step" if not f.runs_commands else "one command")
    quick.append(f"small context (~{f.context_tokens} tokens)")
    return RouteDecision("haiku", tuple(quick))


def route_messages(
    messages: list[ChatMessage],
    tools_available: bool,
    policy: RouterPolicy = DEFAULT_POLICY,
) -> RouteDecision:
    """Convenience for the graph node: features and decision in one call."""
    return route_model(extract_features(messages, tools_available, policy), policy)
