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
from dataclasses import dataclass

from voco.agent import command_builders as b
from voco.agent.command_builders import Build


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    build: Build
    examples: tuple[str, ...]  # phrasings this rule, and no earlier one, must parse
    raw: bool = False  # matched before fillers are stripped
    anywhere: bool = False  # re.search instead of a match from the start


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
    Rule("stop", _r(_STOP), b.says("stop"), ("Stop.", "Never mind.", "Cancel that."), raw=True),
    Rule(
        "greeting",
        _r(r"^(hi|hello|hey|hiya|howdy|yo|good (morning|afternoon|evening))( there)?( voco)?$"),
        b.says("greeting"),
        ("Hello.", "Hey Voco.", "Good morning."),
        raw=True,
    ),
    Rule(
        "thanks",
        _r(
            r"^(thanks|thank you|cheers)( (so much|very much|a lot|voco|that's all|that's it"
            r"|that's great|for now|that's perfect))*$"
        ),
        b.says("thanks"),
        ("Thank you!", "Thanks, that's all.", "Thanks for now."),
        raw=True,
    ),
    Rule(
        "ack",
        _r(
            r"^(great|perfect|awesome|nice|cool|got it|ok|okay|alright|sounds good|good)"
            r"( (thanks|thank you|that's all|that's it|that's great|for now))*$"
        ),
        b.says("ack"),
        ("Okay.", "Got it, thanks.", "Perfect."),
        raw=True,
    ),
    Rule("only_fillers", _r(r"^$"), b.says("ack"), ("Um, so.", "Okay so, just")),
    Rule("stop_after_fillers", _r(_STOP), b.says("stop"), ("Please stop.", "Okay, wait.")),
    Rule(
        "help",
        _r(
            r"^(help|help me|what can you do|what can i say|what can i ask|what do you do"
            r"|what commands .*|which commands .*|what are the commands|how do i use (you|this)"
            r"|how does this work|list (the )?commands|what are you)$"
        ),
        b.says("help"),
        ("What can you do?", "Help.", "List the commands."),
    ),
    Rule(
        "where_am_i",
        _r(
            r"\bwhere am i\b|\b(what|which) (project|repo|repository|folder|directory|codebase) "
            r"(is this|am i in|are we in)\b|\bwhat('s| is) this (project|repo|repository"
            r"|codebase)\b|\bwhat (am i|are we) working on\b"
        ),
        b.says("where_am_i"),
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
        b.run_tests,
        ("Run the tests.", "Are the tests passing?", "Make test.", "Run the JavaScript tests."),
        anywhere=True,
    ),
    Rule("make_target", _r(r"^make (?P<t>\S+)"), b.make_target, ("Make lint.", "Make build.")),
    Rule(
        "refused_verb",
        _r(r"^(?P<v>\S+)"),
        b.refused_verb,
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
        b.says("git_changes"),
        ("What changed since the last commit?", "Show me the changes since my last commit."),
        anywhere=True,
    ),
    Rule(
        "git_branch",
        _r(r"\b(what|which) branch\b|\bcurrent branch\b|^git branch$|\bbranch am i\b"),
        b.says("git_branch"),
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
        b.git_log,
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
        b.says("git_status"),
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
        b.says("git_diff"),
        ("What changed?", "Show me the diff.", "Git diff."),
        anywhere=True,
    ),
    Rule(
        "run_program",
        _r(r"^(run|execute)( the)?( command)? (?P<cmd>.+)$"),
        b.run_program,
        ("Run pytest dash dash verbose.", "Run npm install.", "Run the server."),
    ),
    Rule(
        "git_read_only",
        _r(r"^git (?P<p>\S+)"),
        b.program_if(b.READ_ONLY_GIT),
        ("Git show.", "Git remote dash v."),
    ),
    Rule(
        "git_other",
        _r(r"^git\b"),
        b.refuses("Changing the git repository"),
        ("Git stash pop.", "Git reset hard."),
    ),
    Rule(
        "bare_program",
        _r(r"^(?P<p>\S+)"),
        b.program_if(b.BARE_PROGRAMS),
        ("npm run build", "Ruff check src.", "ls src"),
    ),
    # ------------------------------------------------------------ code and files
    Rule(
        "define_where",
        _r(
            r"^(?:find|show me|show|tell me|search for|look for)?\s*where (?:is |are |was )?"
            r"(?:the )?(?P<t>.+?) (?:is |are )?(?:defined|declared|implemented)$"
        ),
        b.define,
        ("Find where parse config is defined.", "Where is RouterPolicy defined?"),
    ),
    Rule(
        "define_of",
        _r(
            r"^(?:find|show me|show|go to|jump to|search for|look for|look up|open)?\s*(?:the )?"
            r"(?:definition|declaration|implementation) (?:of|for) (?:the )?(?P<t>.+)$"
        ),
        b.define,
        ("Go to the definition of route model.", "Show the implementation of parse config."),
    ),
    Rule(
        "usage_where",
        _r(
            r"^(?:find|show me|show|tell me)?\s*where (?:is |are )?(?:the )?(?P<t>.+?) "
            r"(?:is |are )?(?:used|called|referenced|imported|mentioned)$"
        ),
        b.usage,
        ("Where is route model used?", "Show me where parse config is called."),
    ),
    Rule(
        "usage_of",
        _r(
            r"^(?:find|show|show me|list)?\s*(?:all )?(?:the )?(?:usages|uses|references|callers"
            r"|calls|mentions|occurrences) (?:of|to) (?P<t>.+)$"
        ),
        b.usage,
        ("Find all usages of route model.", "List the callers of parse config."),
    ),
    Rule(
        "where_is",
        _r(r"^where(?: is|'s| are) (?P<t>.+)$"),
        b.where_is,
        ("Where is the config file?", "Where is RouterPolicy?"),
    ),
    Rule(
        "find_file",
        _r(r"^find (?P<t>.+)$"),
        b.find_file,
        ("Find main dot py.", "Find the readme."),
    ),
    Rule(
        "search",
        _r(
            r"^(?:search|grep|look|hunt|scan|find)(?! at\b)(?: (?:through )?(?:the )?(?:code"
            r"|project|repo|codebase|files))?(?: for)? (?P<t>.+?)(?: in (?:the )?"
            r"(?P<scope>[\w ./\-]+?)(?: folder| directory)?)?$"
        ),
        b.search,
        ("Search for TODO.", "Find the to-dos.", "Grep for route model.", "Search for x in src."),
    ),
    Rule(
        "list_verb",
        _r(r"^(?:list|ls)\b(?P<t>.*)$"),
        b.listing,
        ("List the files in src.", "List files.", "List the files in the repo."),
    ),
    Rule(
        "show_listing",
        _r(
            rf"^(?:show|display|see|view|open)(?: me)?(?: the)? {_LISTING_WORDS}"
            r"(?: (?:in|of|inside|under) (?P<t>.+))?$"
        ),
        b.listing,
        ("Show the directory.", "Show me the files in here.", "Show the project structure."),
    ),
    Rule(
        "what_files",
        _r(r"^what (?:files|folders|directories) are (?:there|here|in (?P<t>.+))$"),
        b.listing,
        ("What files are there?", "What files are in this project?", "What files are here?"),
    ),
    Rule(
        "how_many",
        _r(
            r"^how many (?:files|folders|directories|entries)(?: are)?(?: there)?(?: are)?"
            r"(?: here| in (?P<t>.+))?$"
        ),
        b.listing,
        ("How many files are there?", "How many files are in src?"),
    ),
    Rule(
        "named_folder",
        _r(r"^(?:show|open|list)(?: me)? (?P<t>(?:(?! in ).)+?) (?:folder|directory|dir)$"),
        b.listing,
        ("Open the docs folder.", "Show me the tests directory."),
    ),
    Rule(
        "whats_in",
        _r(r"^(?:what's|what is|whats) (?:in|inside) (?P<t>.+)$"),
        b.open_target,
        ("What's in the tests folder?", "What's in main dot py?"),
    ),
    Rule(
        "what_says",
        _r(r"^what does (?P<t>.+?) say$"),
        b.open_target,
        ("What does main dot py say?", "What does the readme say?"),
    ),
    Rule(
        "open",
        _r(
            r"^(?:open|read|show|display|view|cat|print|see|bring up|pull up|look at|go to"
            r"|check out)(?: me)?(?: up)? (?P<t>.+)$"
        ),
        b.open_target,
        ("Open the readme.", "Show me main dot py.", "Look at the git ignore."),
    ),
    Rule(
        "bare_name",
        _r(r"^.+$"),
        b.bare_name,
        ("main dot py", "Main.py.", "The setup dot cfg file."),
    ),
)
