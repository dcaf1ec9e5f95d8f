"""The command mode's grammar as one declarative table: :data:`RULES`.

Each :class:`Rule` is a pattern over one clause (lowercase, punctuation and
fillers off), a builder that turns a match into an :class:`Intent` (or declines
it, the rule's guard), and the phrasings it exists for. The table is tried top
to bottom and the first rule that builds an intent wins, so order still
resolves overlaps ("make test" runs a target before "make" counts as a write;
"what changed since the last commit" is the changes before "last commit" is the
log). What keeps that safe is the ``examples``: ``tests/agent/test_command_rules.py``
parses every example and requires that *its own* rule wins, so a new rule that
shadows an earlier one's phrasings, or is shadowed itself, fails there.

``raw`` rules (small talk) see the clause before fillers are stripped: "hey
voco" is a greeting, though as a prefix it is filler.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from voco.agent.command_targets import (
    commit_count,
    folder,
    looks_like_file,
    runner_said,
    spoken_command,
    target,
    term,
)
from voco.agent.command_types import Intent, IntentKind
from voco.agent.spoken_names import wordlist
from voco.agent.utterance import VERBS


@dataclass(frozen=True)
class Clause:
    """One clause as the rules see it: ``s`` lowercase, ``cased`` as recognised
    (same positions), so search terms keep the case code needs ("MyClass")."""

    s: str
    cased: str

    def said(self, m: re.Match[str], group: str = "t") -> str:
        return self.cased[m.start(group) : m.end(group)]


Build = Callable[[Clause, re.Match[str]], Intent | None]


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    build: Build
    examples: tuple[str, ...]  # phrasings this rule, and no earlier one, must parse
    raw: bool = False  # matched before fillers are stripped
    anywhere: bool = False  # re.search instead of a match from the start


def _is(kind: IntentKind) -> Build:
    return lambda c, m: Intent(kind)


PROGRAMS = frozenset(
    wordlist(
        "ls pwd git make npm npx yarn pnpm pytest python python3 uv pip cargo go node ruff "
        "mypy tox cat echo tree du wc which docker just"
    )
)
# Programs a bare utterance may start with ("npm run build") and still mean "run it".
_BARE_PROGRAMS = frozenset(wordlist("ls pwd pytest npm npx yarn pnpm cargo uv ruff mypy tox"))
_READ_ONLY_GIT = frozenset(wordlist("show remote tag shortlog blame"))
_NOT_MAKE_TARGETS = frozenset(wordlist("a an the new it this that sure me sense"))
# A first word that makes a sentence a question about code, not a file name.
NOT_A_NAME = frozenset(
    wordlist(
        "explain why how what describe summarize summarise tell review analyze analyse "
        "document debug is does can should"
    )
)


def _run_tests(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("run_tests", command=runner_said(c.s))


def _make_target(c: Clause, m: re.Match[str]) -> Intent | None:
    if m.group("t") in _NOT_MAKE_TARGETS:
        return None  # "make a file" is a write
    return Intent("run_command", command=spoken_command(c.s))


def _refused_verb(c: Clause, m: re.Match[str]) -> Intent | None:
    verb = VERBS.get(m.group("v"))
    return Intent("needs_llm", action=verb.offline) if verb and verb.offline else None


def _git_log(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("git_log", count=commit_count(c.s))


def _run_program(c: Clause, m: re.Match[str]) -> Intent:
    cmd = spoken_command(m.group("cmd"))
    if cmd.split()[0] in PROGRAMS:
        return Intent("run_command", command=cmd)
    return Intent("needs_llm", action="Running that")


def _program_if(programs: frozenset[str]) -> Build:
    def build(c: Clause, m: re.Match[str]) -> Intent | None:
        if m.group("p") not in programs:
            return None
        return Intent("run_command", command=spoken_command(c.s))

    return build


def _define(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("define", target=term(c.said(m)))


def _usage(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("search", target=term(c.said(m)))


def _where_is(c: Clause, m: re.Match[str]) -> Intent:
    if looks_like_file(m.group("t")):
        name, want = target(m.group("t"))
        return Intent("locate", target=name, want=want)
    return Intent("define", target=term(c.said(m)))  # "where is RouterPolicy"


def _find_file(c: Clause, m: re.Match[str]) -> Intent | None:
    if not looks_like_file(m.group("t")):
        return None  # "find the to-dos" is a search
    name, want = target(m.group("t"))
    return Intent("locate", target=name, want=want)


def _search(c: Clause, m: re.Match[str]) -> Intent:
    scope = folder(m.group("scope") or "") if m.group("scope") else ""
    return Intent("search", target=term(c.said(m)), scope=scope)


def _list(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("list", target=folder(m.group("t") or ""), want="dir")


def _open(c: Clause, m: re.Match[str]) -> Intent | None:
    name, want = target(m.group("t"))
    return Intent("open", target=name, want=want) if name else None


def _bare_name(c: Clause, m: re.Match[str]) -> Intent | None:
    name, want = target(c.s)
    words = c.s.split()
    if want != "file" or len(words) > 6 or words[0] in NOT_A_NAME:
        return None
    return Intent("open", target=name, want=want)  # just a file name: "main dot py"


def _r(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_STOP = (
    r"^(stop|cancel|abort|never ?mind|forget (it|that|about it)|be quiet|quiet|shut up|hush"
    r"|that's enough|enough|hold on|wait|stop (it|that|talking|now)|cancel (it|that))$"
)
_LISTING_WORDS = (
    r"(?:files|directory|folder|directory listing|file list|project structure|structure|tree"
    r"|contents|project|folder structure)"
)

RULES: tuple[Rule, ...] = (
    # ------------------------------------------------------------ small talk
    Rule("stop", _r(_STOP), _is("stop"), ("Stop.", "Never mind.", "Cancel that."), raw=True),
    Rule(
        "greeting",
        _r(r"^(hi|hello|hey|hiya|howdy|yo|good (morning|afternoon|evening))( there)?( voco)?$"),
        _is("greeting"),
        ("Hello.", "Hey Voco.", "Good morning."),
        raw=True,
    ),
    Rule(
        "thanks",
        _r(
            r"^(thanks|thank you|cheers)( (so much|very much|a lot|voco|that's all|that's it"
            r"|that's great|for now|that's perfect))*$"
        ),
        _is("thanks"),
        ("Thank you!", "Thanks, that's all.", "Thanks for now."),
        raw=True,
    ),
    Rule(
        "ack",
        _r(
            r"^(great|perfect|awesome|nice|cool|got it|ok|okay|alright|sounds good|good)"
            r"( (thanks|thank you|that's all|that's it|that's great|for now))*$"
        ),
        _is("ack"),
        ("Okay.", "Got it, thanks.", "Perfect."),
        raw=True,
    ),
    Rule("only_fillers", _r(r"^$"), _is("ack"), ("Um, so.", "Okay so, just")),
    Rule("stop_after_fillers", _r(_STOP), _is("stop"), ("Please stop.", "Okay, wait.")),
    Rule(
        "help",
        _r(
            r"^(help|help me|what can you do|what can i say|what can i ask|what do you do"
            r"|what commands .*|which commands .*|what are the commands|how do i use (you|this)"
            r"|how does this work|list (the )?commands|what are you)$"
        ),
        _is("help"),
        ("What can you do?", "Help.", "List the commands."),
    ),
    Rule(
        "where_am_i",
        _r(
            r"\bwhere am i\b|\b(what|which) (project|repo|repository|folder|directory|codebase) "
            r"(is this|am i in|are we in)\b|\bwhat('s| is) this (project|repo|repository"
            r"|codebase)\b|\bwhat (am i|are we) working on\b"
        ),
        _is("where_am_i"),
        ("Where am I?", "What project is this?", "What's this repo?"),
        anywhere=True,
    ),
    # ------------------------------------------------------------ commands
    Rule(
        "run_tests",
        _r(
            r"\b(run|execute|start|launch|kick off|rerun|re-run)\b.*\b(tests?|test suite|specs?)\b"
            r"|^(the )?(tests?|test suite)$|\b(are|do) (the )?tests pass(ing)?\b"
            r"|^test (it|everything|the (project|code))$"
            r"|^(py ?test|npm test|npm run test|yarn test|cargo test|go test|make test)\b"
        ),
        _run_tests,
        ("Run the tests.", "Are the tests passing?", "Make test.", "Run the JavaScript tests."),
        anywhere=True,
    ),
    Rule("make_target", _r(r"^make (?P<t>\S+)"), _make_target, ("Make lint.", "Make build.")),
    Rule(
        "refused_verb",
        _r(r"^(?P<v>\S+)"),
        _refused_verb,
        (
            "Create a file called notes dot txt.",
            "Delete the build folder.",
            "Refactor the router.",
            "Commit my changes.",
            "Make a new file.",
        ),
    ),
    # ------------------------------------------------------------ git
    Rule(
        "git_changes",
        _r(
            r"\bsince (?:the |my |our )?(?:last|previous|latest|most recent) commit\b"
            r"|\bsince (?:head|i (?:last )?committed)\b"
        ),
        _is("git_changes"),
        ("What changed since the last commit?", "Show me the changes since my last commit."),
        anywhere=True,
    ),
    Rule(
        "git_branch",
        _r(r"\b(what|which) branch\b|\bcurrent branch\b|^git branch$|\bbranch am i\b"),
        _is("git_branch"),
        ("What branch am I on?", "Which branch is this?", "Git branch."),
        anywhere=True,
    ),
    Rule(
        "git_log",
        _r(
            r"\bgit log\b|\bcommit (history|log)\b"
            r"|\b(last|recent|latest|previous|past) (\w+ )?commits?\b"
            r"|^(show|list)( me)?( the)? commits$|\bwhat did i commit\b"
        ),
        _git_log,
        ("Show the last commits.", "Show me the last three commits.", "What was the last commit?"),
        anywhere=True,
    ),
    Rule(
        "git_status",
        _r(
            r"\bgit status\b|^status$|\b(repo|repository|git) status\b|^(check )?git$"
            r"|\bis (the )?(repo|repository|working tree) clean\b|\bwhat('s| is) the status\b"
            r"|\buncommitted\b|\buntracked\b|\bmodified files\b"
        ),
        _is("git_status"),
        ("Git status.", "What's the status of the repo?", "Do I have uncommitted changes?"),
        anywhere=True,
    ),
    Rule(
        "git_diff",
        _r(
            r"\bwhat (has |have )?changed\b|\bwhat did i change\b|\bwhat's changed\b|\bgit diff\b"
            r"|^diff$|\b(show|see)( me)?( the| my)? (diff|changes)\b|\bmy changes\b"
            r"|\bwhat are the changes\b"
        ),
        _is("git_diff"),
        ("What changed?", "Show me the diff.", "Git diff."),
        anywhere=True,
    ),
    Rule(
        "run_program",
        _r(r"^(run|execute)( the)?( command)? (?P<cmd>.+)$"),
        _run_program,
        ("Run pytest dash dash verbose.", "Run npm install.", "Run the server."),
    ),
    Rule(
        "git_read_only",
        _r(r"^git (?P<p>\S+)"),
        _program_if(_READ_ONLY_GIT),
        ("Git show.", "Git remote dash v."),
    ),
    Rule(
        "git_other",
        _r(r"^git\b"),
        lambda c, m: Intent("needs_llm", action="Changing the git repository"),
        ("Git stash pop.", "Git reset hard."),
    ),
    Rule(
        "bare_program",
        _r(r"^(?P<p>\S+)"),
        _program_if(_BARE_PROGRAMS),
        ("npm run build", "Ruff check src.", "ls src"),
    ),
    # ------------------------------------------------------------ code and files
    Rule(
        "define_where",
        _r(
            r"^(?:find|show me|show|tell me|search for|look for)?\s*where (?:is |are |was )?"
            r"(?:the )?(?P<t>.+?) (?:is |are )?(?:defined|declared|implemented)$"
        ),
        _define,
        ("Find where parse config is defined.", "Where is RouterPolicy defined?"),
    ),
    Rule(
        "define_of",
        _r(
            r"^(?:find|show me|show|go to|jump to|search for|look for|look up|open)?\s*(?:the )?"
            r"(?:definition|declaration|implementation) (?:of|for) (?:the )?(?P<t>.+)$"
        ),
        _define,
        ("Go to the definition of route model.", "Show the implementation of parse config."),
    ),
    Rule(
        "usage_where",
        _r(
            r"^(?:find|show me|show|tell me)?\s*where (?:is |are )?(?:the )?(?P<t>.+?) "
            r"(?:is |are )?(?:used|called|referenced|imported|mentioned)$"
        ),
        _usage,
        ("Where is route model used?", "Show me where parse config is called."),
    ),
    Rule(
        "usage_of",
        _r(
            r"^(?:find|show|show me|list)?\s*(?:all )?(?:the )?(?:usages|uses|references|callers"
            r"|calls|mentions|occurrences) (?:of|to) (?P<t>.+)$"
        ),
        _usage,
        ("Find all usages of route model.", "List the callers of parse config."),
    ),
    Rule(
        "where_is",
        _r(r"^where(?: is|'s| are) (?P<t>.+)$"),
        _where_is,
        ("Where is the config file?", "Where is RouterPolicy?"),
    ),
    Rule(
        "find_file",
        _r(r"^find (?P<t>.+)$"),
        _find_file,
        ("Find main dot py.", "Find the readme."),
    ),
    Rule(
        "search",
        _r(
            r"^(?:search|grep|look|hunt|scan|find)(?! at\b)(?: (?:through )?(?:the )?(?:code"
            r"|project|repo|codebase|files))?(?: for)? (?P<t>.+?)(?: in (?:the )?"
            r"(?P<scope>[\w ./\-]+?)(?: folder| directory)?)?$"
        ),
        _search,
        ("Search for TODO.", "Find the to-dos.", "Grep for route model.", "Search for x in src."),
    ),
    Rule(
        "list_verb",
        _r(r"^(?:list|ls)\b(?P<t>.*)$"),
        _list,
        ("List the files in src.", "List files.", "List the files in the repo."),
    ),
    Rule(
        "show_listing",
        _r(
            rf"^(?:show|display|see|view|open)(?: me)?(?: the)? {_LISTING_WORDS}"
            r"(?: (?:in|of|inside|under) (?P<t>.+))?$"
        ),
        _list,
        ("Show the directory.", "Show me the files in here.", "Show the project structure."),
    ),
    Rule(
        "what_files",
        _r(r"^what (?:files|folders|directories) are (?:there|here|in (?P<t>.+))$"),
        _list,
        ("What files are there?", "What files are in this project?", "What files are here?"),
    ),
    Rule(
        "how_many",
        _r(
            r"^how many (?:files|folders|directories|entries)(?: are)?(?: there)?(?: are)?"
            r"(?: here| in (?P<t>.+))?$"
        ),
        _list,
        ("How many files are there?", "How many files are in src?"),
    ),
    Rule(
        "named_folder",
        _r(r"^(?:show|open|list)(?: me)? (?P<t>(?:(?! in ).)+?) (?:folder|directory|dir)$"),
        _list,
        ("Open the docs folder.", "Show me the tests directory."),
    ),
    Rule(
        "whats_in",
        _r(r"^(?:what's|what is|whats) (?:in|inside) (?P<t>.+)$"),
        _open,
        ("What's in the tests folder?", "What's in main dot py?"),
    ),
    Rule(
        "what_says",
        _r(r"^what does (?P<t>.+?) say$"),
        _open,
        ("What does main dot py say?", "What does the readme say?"),
    ),
    Rule(
        "open",
        _r(
            r"^(?:open|read|show|display|view|cat|print|see|bring up|pull up|look at|go to"
            r"|check out)(?: me)?(?: up)? (?P<t>.+)$"
        ),
        _open,
        ("Open the readme.", "Show me main dot py.", "Look at the git ignore."),
    ),
    Rule(
        "bare_name",
        _r(r"^.+$"),
        _bare_name,
        ("main dot py", "Main.py.", "The setup dot cfg file."),
    ),
)
