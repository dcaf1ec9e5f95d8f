"""The command mode's next step, recomputed from the turn so far.

Statelessness is the point: the graph loops model → tools → model and may replay
or resume a thread, so the command mode keeps nothing between calls. Each call
gets the user's intent and the :class:`Step` s already taken in this turn (tool
calls with their results) and returns either the next :class:`Call` or the final
:class:`Reply`. Every planner is therefore a pure function of (intent, steps),
and a replay of the same conversation yields the same calls.

A turn may hold several requests ("open the readme and run the tests"):
:func:`plan_request` plans them in order over the same steps. A request whose
steps are all done has its reply; the first one that still needs a call makes
it, after saying (:class:`Progress`) the replies not yet said this turn, so
the user hears each result as it comes and approvals arrive in the order asked.

Spoken names are resolved against real directory listings by
:mod:`voco.agent.name_lookup`; test runners are chosen by
:mod:`voco.agent.command_runners`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from voco.agent.command_output import changes_summary, command_summary
from voco.agent.command_runners import tests_command
from voco.agent.command_types import (
    Call,
    Calls,
    Decision,
    Intent,
    Lookup,
    Progress,
    Reply,
    Resolved,
    Step,
    calls_or_one,
    entries_of,
    find_step,
    is_ok,
    listings,
)
from voco.agent.name_lookup import resolve
from voco.agent.spoken_names import speak_identifier, speak_name
from voco.agent.summaries import (
    GREETING_TEXT,
    HELP_TEXT,
    NO_RUNTIME_TEXT,
    RUNTIME_GONE_TEXT,
    definition_summary,
    error_text,
    list_summary,
    lookup_failure_text,
    matches_of,
    needs_llm_text,
    read_summary,
    search_summary,
    where_am_i_summary,
)

# Tool rounds (model responses with calls) per turn before giving up: a loop guard
# that also stays under the graph's per-turn model-step limit (8 by default).
MAX_ROUNDS = 6
_README = re.compile(r"^readme(\.(md|markdown|rst|txt))?$", re.IGNORECASE)

GIT_COMMANDS = {
    "git_status": "git status --porcelain=v1 --branch",
    "git_diff": "git diff --stat",
    "git_branch": "git branch --show-current",
}
# "What changed since the last commit": the size of the change, then the files.
CHANGES_COMMANDS = ("git diff --stat HEAD", "git status --porcelain")
TOO_MANY_STEPS_TEXT = "I couldn't finish that in command mode; it took too many steps."
_TEXT_REPLIES = {
    "empty": "I didn't catch that. Could you say it again?",
    "stop": "Okay.",
    "ack": "Okay.",
    "thanks": "You're welcome.",
    "greeting": GREETING_TEXT,
    "help": HELP_TEXT,
}


def _show_dir(path: str, steps: list[Step]) -> Decision:
    result = listings(steps).get(path)
    if result is None:
        return Call("list_dir", {"path": path})
    if not is_ok(result):
        return Reply(error_text("list_dir", {"path": path}, result))
    return Reply(list_summary(path, result))


def _run(command: str, steps: list[Step]) -> Decision:
    done = find_step(steps, "execute_command", {"command": command})
    if done is None:
        return Call("execute_command", {"command": command})
    return Reply(command_summary(command, done.result))


def _pending(found: Lookup) -> Decision:
    """A lookup that has not resolved: the listing it needs, or why it failed."""
    if isinstance(found, Call | Calls):
        return found
    assert not isinstance(found, Resolved)
    return Reply(lookup_failure_text(found))


# ---------------------------------------------------------------------------- planners


def _open(intent: Intent, steps: list[Step]) -> Decision:
    found = resolve(intent.target, intent.want, steps)
    if not isinstance(found, Resolved):
        return _pending(found)
    if found.is_dir:
        return _show_dir(found.path, steps)
    done = find_step(steps, "read_file", {"path": found.path})
    if done is None:
        return Call("read_file", {"path": found.path})
    if not is_ok(done.result):
        return Reply(error_text("read_file", done.arguments, done.result))
    return Reply(read_summary(found.path, done.result))


def _list(intent: Intent, steps: list[Step]) -> Decision:
    found = resolve(intent.target, "dir", steps)
    return _show_dir(found.path, steps) if isinstance(found, Resolved) else _pending(found)


def _locate(intent: Intent, steps: list[Step]) -> Decision:
    found = resolve(intent.target, intent.want, steps)
    if not isinstance(found, Resolved):
        return _pending(found)
    parent, _, name = found.path.rpartition("/")
    what = f"The {speak_name(name)} folder" if found.is_dir else speak_name(name)
    if not parent:
        return Reply(f"{what} is at the project root.")
    where = " slash ".join(speak_name(p) for p in parent.split("/"))
    return Reply(f"{what} is in {where}.")


def pattern_variants(term: str) -> list[str]:
    """How a spoken identifier may be written: "parse config" → parse_config,
    parseConfig, ParseConfig, then the words as said."""
    words = re.findall(r"[A-Za-z0-9]+", term)
    if len(words) > 1 and " " in term.strip():
        lower = [w.lower() for w in words]
        variants = [
            "_".join(lower),
            lower[0] + "".join(w.capitalize() for w in lower[1:]),
            "".join(w.capitalize() for w in lower),
            term,
        ]
    else:
        # "Token" may be a recogniser's sentence case for "token"; "RouterPolicy" is code
        variants = [term] + ([term.lower()] if term[1:].islower() else [])
    return list(dict.fromkeys(v for v in variants if v))[:4]


def _search(intent: Intent, steps: list[Step]) -> Decision:
    scope = ""
    if intent.scope:
        found = resolve(intent.scope, "dir", steps)
        if not isinstance(found, Resolved):
            return _pending(found)
        scope = found.path
    if not intent.target:
        return Reply("What should I search for?")
    # every spelling at once (one step, searched concurrently); the first that hits wins
    searches = [
        {"pattern": v, **({"path": scope} if scope else {})}
        for v in pattern_variants(intent.target)
    ]
    done = [find_step(steps, "search_text", args) for args in searches]
    missing = [args for args, step in zip(searches, done, strict=True) if step is None]
    if missing:
        return calls_or_one([Call("search_text", args) for args in missing])
    for args, step in zip(searches, done, strict=True):
        assert step is not None
        if not is_ok(step.result):
            return Reply(error_text("search_text", args, step.result))
        if matches_of(step.result):
            pattern = str(args["pattern"])
            if intent.kind == "define":
                return Reply(definition_summary(pattern, step.result, pattern))
            return Reply(search_summary(pattern, step.result))
    return Reply(f"I found no matches for {speak_identifier(intent.target)}.")


def _run_tests(intent: Intent, steps: list[Step]) -> Decision:
    command = tests_command(intent, steps)
    return _run(command, steps) if isinstance(command, str) else command


def _changes(intent: Intent, steps: list[Step]) -> Decision:
    done = [find_step(steps, "execute_command", {"command": c}) for c in CHANGES_COMMANDS]
    missing = [
        Call("execute_command", {"command": c})
        for c, d in zip(CHANGES_COMMANDS, done, strict=True)
        if d is None
    ]
    if missing:
        return calls_or_one(missing)
    outputs: list[str] = []
    for command, step in zip(CHANGES_COMMANDS, done, strict=True):
        assert step is not None
        res = step.result.get("result") or {}
        if not is_ok(step.result) or res.get("exit_code") != 0 or res.get("timed_out"):
            if "bad revision" in str(res.get("stderr")) or "ambiguous argument" in str(
                res.get("stderr")
            ):
                return Reply("There are no commits yet, so there is nothing to compare with.")
            return Reply(command_summary(command, step.result))
        outputs.append(str(res.get("stdout") or ""))
    return Reply(changes_summary(outputs[0], outputs[1]))


def _where_am_i(intent: Intent, steps: list[Step]) -> Decision:
    root = listings(steps).get(".")
    if root is None:
        return Call("list_dir", {"path": "."})
    if not is_ok(root):
        return Reply(error_text("list_dir", {"path": "."}, root))
    readmes = sorted((n for n, d in entries_of(root) if not d and _README.match(n)), key=len)
    readmes.sort(key=lambda n: not n.lower().endswith(".md"))
    if not readmes:
        return Reply(where_am_i_summary(root, None))
    args = {"path": readmes[0], "length": 4000}
    done = find_step(steps, "read_file", args)
    if done is None:
        return Call("read_file", args)
    return Reply(where_am_i_summary(root, done.result))


_PLANNERS: dict[str, Callable[[Intent, list[Step]], Decision]] = {
    "open": _open,
    "list": _list,
    "locate": _locate,
    "search": _search,
    "define": _search,
    "run_tests": _run_tests,
    "run_command": lambda intent, steps: _run(intent.command, steps),
    "git_status": lambda intent, steps: _run(GIT_COMMANDS["git_status"], steps),
    "git_diff": lambda intent, steps: _run(GIT_COMMANDS["git_diff"], steps),
    "git_branch": lambda intent, steps: _run(GIT_COMMANDS["git_branch"], steps),
    "git_changes": _changes,
    "git_log": lambda intent, steps: _run(f"git log --oneline -n {intent.count or 5}", steps),
    "where_am_i": _where_am_i,
}


def plan(intent: Intent, steps: list[Step], tools: frozenset[str], rounds: int = 0) -> Decision:
    """The next step for ``intent`` given the ``steps`` taken so far this turn
    (in ``rounds`` model responses)."""
    if intent.kind in _TEXT_REPLIES:
        return Reply(_TEXT_REPLIES[intent.kind])
    if intent.kind == "needs_llm":
        return Reply(needs_llm_text(intent.action))
    decision = _PLANNERS[intent.kind](intent, steps)
    if isinstance(decision, Reply):
        return decision
    if rounds >= MAX_ROUNDS:
        return Reply(TOO_MANY_STEPS_TEXT)
    wanted = decision.calls if isinstance(decision, Calls) else (decision,)
    if any(isinstance(c, Call) and c.name not in tools for c in wanted):
        return Reply(NO_RUNTIME_TEXT)
    return decision


# Replies after which the later requests of a turn cannot fare better.
_FINAL = frozenset({NO_RUNTIME_TEXT, RUNTIME_GONE_TEXT, TOO_MANY_STEPS_TEXT})


def plan_request(
    intents: tuple[Intent, ...],
    steps: list[Step],
    tools: frozenset[str],
    rounds: int = 0,
    said: str = "",
) -> Decision:
    """The next step for a turn of one or more requests, in order.

    ``said`` is what this turn's earlier responses already said, so each
    request's reply is said once: as :class:`Progress` before the next
    request's calls, or in the final reply.
    """
    texts: list[str] = []
    for intent in intents:
        decision = plan(intent, steps, tools, rounds)
        if isinstance(decision, Reply):
            texts.append(decision.text)
            if decision.text in _FINAL:
                break
            continue
        assert isinstance(decision, Call | Calls)
        new = _unsaid(texts, said)
        return Progress(new, decision) if new else decision
    return Reply(_unsaid(texts, said) or "Okay.")


def _unsaid(texts: list[str], said: str) -> str:
    return " ".join(t for t in dict.fromkeys(texts) if t not in said)
