"""Spoken request → :class:`Intent` s, for the offline command mode.

Transcripts arrive as a recogniser writes them: capitalised, punctuated, with
fillers, and often more than one request ("Okay, open the readme and then run the
tests."). :func:`parse_request` cuts the request into clauses with the router's
splitter (:func:`~voco.agent.utterance.split_clauses`) and parses each with the
rule table (:mod:`voco.agent.command_rules`). It is deliberately a small,
predictable grammar: anything it does not recognise becomes ``needs_llm`` with
an honest explanation, never a guessed action.
"""

from __future__ import annotations

from voco.agent.command_builders import NOT_A_NAME, Clause
from voco.agent.command_rules import RULES, Rule
from voco.agent.command_types import ACTIONS, Intent, IntentKind, Want
from voco.agent.utterance import VERBS, clean_utterance, filler_span, split_clauses

__all__ = ["Intent", "IntentKind", "Want", "parse_request", "parse_utterance"]

# A clause that names only a thing ("... and the docs folder") continues the
# previous clause's request: said again with this verb in front.
_CONTINUES: dict[str, str] = {
    "open": "open",
    "list": "list",
    "locate": "where is",
    "search": "search for",
}
# What a clause that only names a thing starts with ("the docs folder").
_DETERMINERS: frozenset[str] = frozenset({"the", "a", "an", "my", "our", "this", "that"})
_CHATTER: frozenset[str] = frozenset({"empty", "ack", "greeting", "thanks", "help"})


def parse_utterance(text: str, rules: tuple[Rule, ...] = RULES) -> Intent:
    """One clause → one Intent, by the first of ``rules`` that builds one.

    Pure and total: every input yields an Intent (``needs_llm`` when no rule fits).
    ``rules`` is a parameter so the shadowing test can try a modified table.
    """
    s = clean_utterance(text)
    cased = clean_utterance(text, lower=False)
    if len(cased) != len(s):  # lowercasing changed lengths (rare Unicode): no case
        cased = s
    if not s:
        return Intent("empty")
    start, end = filler_span(s)
    raw, stripped = Clause(s, cased), Clause(s[start:end], cased[start:end])
    for rule in rules:
        clause = raw if rule.raw else stripped
        m = (rule.pattern.search if rule.anywhere else rule.pattern.match)(clause.s)
        if m is None:
            continue
        intent = rule.build(clause, m)
        if intent is not None:
            return _named(intent, rule.name)
    return Intent("needs_llm", rule="no rule")


def _named(intent: Intent, rule: str) -> Intent:
    return Intent(
        intent.kind,
        intent.target,
        intent.want,
        intent.scope,
        intent.command,
        intent.count,
        intent.action,
        rule=rule,
    )


def parse_request(text: str) -> tuple[Intent, ...]:
    """A whole turn → the requests in it, in the order said.

    One clause: its intent. Several: each clause's intent, with small talk
    ("okay", "thanks") dropped and a bare name continuing the clause before it.
    If no clause acts on the project ("Thanks, that's all."), the turn is parsed
    as one clause instead. A turn that ends with "stop" is a stop.
    """
    clauses = split_clauses(text)
    if len(clauses) < 2:
        return (parse_utterance(text),)
    intents: list[Intent] = []
    for clause in clauses:
        intent = parse_utterance(clause)
        if intent.kind == "needs_llm" and not intent.action and intents and _names_only(clause):
            verb = _CONTINUES.get(intents[-1].kind)
            again = parse_utterance(f"{verb} {clause}") if verb else intent
            intent = again if again.kind in ACTIONS else intent
        intents.append(intent)
    if intents[-1].kind == "stop":
        return (intents[-1],)
    if not any(i.kind in ACTIONS for i in intents):
        return (parse_utterance(text),)
    kept = [i for i in intents if i.kind not in _CHATTER and i.kind != "stop"]
    return tuple(dict.fromkeys(kept))


def _names_only(clause: str) -> bool:
    """ "the docs folder", "src": a thing, not a request of its own ("explain it")."""
    words = clean_utterance(clause).split()
    if not words:
        return False
    if words[0] in _DETERMINERS:
        return True
    return len(words) == 1 and words[0] not in NOT_A_NAME and words[0] not in VERBS
