"""Spoken request → :class:`Intent`, for the offline command mode.

Transcripts arrive as a recogniser writes them: capitalised, punctuated, with
fillers ("Okay, can you please open the readme?"). The parser strips all that,
then tries a fixed list of patterns *in order* (the order resolves overlaps:
"show the last commits" is git, not "show a file"; "make test" runs tests, "make
a file" is a write). It is deliberately a small, predictable grammar: anything it
does not recognise becomes ``needs_llm`` with an honest explanation, never a
guessed action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from voco.agent.spoken_names import NUMBER_WORDS, has_extension, normalise_spoken_name, wordlist

IntentKind = Literal[
    "empty",
    "stop",
    "greeting",
    "thanks",
    "ack",  # "okay", "got it"
    "help",
    "open",  # read a file, or list it if it turns out to be a folder
    "list",
    "locate",  # where is a file
    "search",
    "define",  # where is a symbol defined
    "run_tests",
    "run_command",
    "git_status",
    "git_diff",
    "git_log",
    "git_branch",
    "where_am_i",
    "needs_llm",
]
Want = Literal["", "file", "dir"]


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    target: str = ""  # normalised spoken name ("utils/io.py") or search term
    want: Want = ""  # what kind of entry the target names, when the user said so
    scope: str = ""  # normalised folder a search is limited to
    command: str = ""  # run_command; test runner family for run_tests
    count: int = 0  # git log length
    action: str = ""  # needs_llm: what was asked, as a sentence subject


_LEADING_FILLERS = (
    "hey voco",
    "voco",
    "okay",
    "ok",
    "alright",
    "all right",
    "um",
    "uh",
    "so",
    "now",
    "please",
    "can you",
    "could you",
    "would you",
    "will you",
    "can i",
    "could i",
    "i want to",
    "i'd like to",
    "i would like to",
    "i want you to",
    "i'd like you to",
    "i need you to",
    "i need to",
    "let's",
    "let me",
    "go ahead and",
    "just",
    "quickly",
    "and",
)
_TRAILING_FILLERS = ("please", "for me", "now", "thanks", "thank you", "real quick", "again")

_STOP = re.compile(
    r"^(stop|cancel|abort|never ?mind|forget (it|that|about it)|be quiet|quiet|shut up|hush"
    r"|that's enough|enough|hold on|wait|stop (it|that|talking|now)|cancel (it|that))$"
)
_GREETING = re.compile(
    r"^(hi|hello|hey|hiya|howdy|yo|good (morning|afternoon|evening))( there)?( voco)?$"
)
_THANKS = re.compile(
    r"^(thanks|thank you|cheers)( (so much|very much|a lot|voco|that's all|that's it"
    r"|that's great|for now|that's perfect))*$"
)
_ACK = re.compile(
    r"^(great|perfect|awesome|nice|cool|got it|ok|okay|alright|sounds good|good)"
    r"( (thanks|thank you|that's all|that's it|that's great|for now))*$"
)
_HELP = re.compile(
    r"^(help|help me|what can you do|what can i say|what can i ask|what do you do"
    r"|what commands .*|which commands .*|what are the commands|how do i use (you|this)"
    r"|how does this work|list (the )?commands|what are you)$"
)
_WHERE_AM_I = re.compile(
    r"\bwhere am i\b|\b(what|which) (project|repo|repository|folder|directory|codebase) "
    r"(is this|am i in|are we in)\b|\bwhat('s| is) this (project|repo|repository|codebase)\b"
    r"|\bwhat (am i|are we) working on\b"
)
_GIT_BRANCH = re.compile(r"\b(what|which) branch\b|\bcurrent branch\b|^git branch$|\bbranch am i\b")
_GIT_LOG = re.compile(
    r"\bgit log\b|\bcommit (history|log)\b|\b(last|recent|latest|previous|past) (\w+ )?commits?\b"
    r"|^(show|list)( me)?( the)? commits$|\bwhat did i commit\b"
)
_GIT_STATUS = re.compile(
    r"\bgit status\b|^status$|\b(repo|repository|git) status\b|^(check )?git$"
    r"|\bis (the )?(repo|repository|working tree) clean\b|\bwhat('s| is) the status\b"
    r"|\buncommitted\b|\buntracked\b|\bmodified files\b"
)
_GIT_DIFF = re.compile(
    r"\bwhat (has |have )?changed\b|\bwhat did i change\b|\bwhat's changed\b|\bgit diff\b"
    r"|^diff$|\b(show|see)( me)?( the| my)? (diff|changes)\b|\bmy changes\b"
    r"|\bwhat are the changes\b"
)
_RUN_TESTS = re.compile(
    r"\b(run|execute|start|launch|kick off|rerun|re-run)\b.*\b(tests?|test suite|specs?)\b"
    r"|^(the )?(tests?|test suite)$|\b(are|do) (the )?tests pass(ing)?\b"
    r"|^test (it|everything|the (project|code))$"
    r"|^(py ?test|npm test|npm run test|yarn test|cargo test|go test|make test)\b"
)
_RUNNER_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bpy ?test\b|\bpython\b", "python"),
    (r"\bnpm\b|\bjest\b|\bvitest\b|\bjavascript\b|\bnode\b|\byarn\b", "node"),
    (r"\bcargo\b|\brust\b", "rust"),
    (r"\bgo test\b|\bgolang\b|\bgo tests\b", "go"),
    (r"\bmake\b", "make"),
)
_RUN_COMMAND = re.compile(r"^(run|execute)( the)?( command)? (?P<cmd>.+)$")
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
_NOT_A_NAME = frozenset(
    wordlist(
        "explain why how what describe summarize summarise tell review analyze analyse "
        "document debug is does can should"
    )
)
_WRITE_VERBS: dict[str, str] = {
    **dict.fromkeys(
        wordlist("create write add make generate insert append save copy paste new"),
        "Creating or writing files",
    ),
    **dict.fromkeys(wordlist("delete remove rm erase"), "Deleting files"),
    **dict.fromkeys(["rename", "move", "mv"], "Renaming or moving files"),
    **dict.fromkeys(
        wordlist(
            "edit change modify update fix replace refactor implement rewrite format revert "
            "undo reset comment uncomment"
        ),
        "Editing code",
    ),
    **dict.fromkeys(
        wordlist("commit push pull merge rebase stash checkout"),
        "Changing the git repository",
    ),
    **dict.fromkeys(
        wordlist("install uninstall deploy build compile"), "Installing, building or deploying"
    ),
}
_DEFINE = (
    re.compile(
        r"^(?:find|show me|show|tell me|search for|look for)?\s*where (?:is |are |was )?"
        r"(?:the )?(?P<t>.+?) (?:is |are )?(?:defined|declared|implemented)$"
    ),
    re.compile(
        r"^(?:find|show me|show|go to|jump to|search for|look for|look up|open)?\s*(?:the )?"
        r"(?:definition|declaration|implementation) (?:of|for) (?:the )?(?P<t>.+)$"
    ),
)
_USAGE = (
    re.compile(
        r"^(?:find|show me|show|tell me)?\s*where (?:is |are )?(?:the )?(?P<t>.+?) "
        r"(?:is |are )?(?:used|called|referenced|imported|mentioned)$"
    ),
    re.compile(
        r"^(?:find|show|show me|list)?\s*(?:all )?(?:the )?(?:usages|uses|references|callers"
        r"|calls|mentions|occurrences) (?:of|to) (?P<t>.+)$"
    ),
)
_SEARCH = re.compile(
    r"^(?:search|grep|look|hunt|scan|find)(?: (?:through )?(?:the )?(?:code|project|repo"
    r"|codebase|files))?(?: for)? (?P<t>.+?)(?: in (?:the )?(?P<scope>[\w ./\-]+?)"
    r"(?: folder| directory)?)?$"
)
_LOCATE = (
    re.compile(r"^where(?: is|'s| are) (?P<t>.+)$"),
    re.compile(r"^find (?P<t>.+)$"),
)
_LIST = (
    re.compile(r"^(?:list|ls)\b(?P<t>.*)$"),
    re.compile(
        r"^(?:show|display|see|view|open)(?: me)?(?: the)? (?:files|directory|folder"
        r"|directory listing|file list|project structure|structure|tree|contents|project"
        r"|folder structure)(?: (?:in|of|inside|under) (?P<t>.+))?$"
    ),
    re.compile(r"^what (?:files|folders|directories) are (?:there|here|in (?P<t>.+))$"),
    re.compile(
        r"^how many (?:files|folders|directories|entries)(?: are)?(?: there)?(?: are)?"
        r"(?: here| in (?P<t>.+))?$"
    ),
    re.compile(r"^(?:show|open|list)(?: me)? (?P<t>(?:(?! in ).)+?) (?:folder|directory|dir)$"),
)
# Ways of saying "the project root" where a folder name would go.
_ROOT_NAMES = frozenset(
    (
        "project",
        "repo",
        "repository",
        "codebase",
        "here",
        "root",
        "workspace",
        "this",
        "current directory",
        "current folder",
        "top level",
        "root folder",
        "root directory",
    )
)
_WHATS_IN = re.compile(r"^(?:what's|what is|whats) (?:in|inside) (?P<t>.+)$")
_OPEN = re.compile(
    r"^(?:open|read|show|display|view|cat|print|see|bring up|pull up|look at|go to"
    r"|check out)(?: me)?(?: up)? (?P<t>.+)$"
)
_WHAT_SAYS = re.compile(r"^what does (?P<t>.+?) say$")
_FILE_WORDS = frozenset(
    wordlist(
        "readme makefile dockerfile license licence changelog gitignore pyproject contributing"
    )
)
_TODO = {
    **dict.fromkeys(("to do", "to dos", "todos", "todo", "to-do", "to-dos", "to do's"), "TODO"),
    **dict.fromkeys(("fix me", "fixme", "fix-me"), "FIXME"),
}


# Words before a spoken name that are not part of it ("the file", "contents of").
_TARGET_LEAD = frozenset(
    wordlist(
        "the a an my our this that file files folder directory dir contents content of in "
        "inside under called named all me up"
    )
)


def clean_utterance(text: str, *, lower: bool = True) -> str:
    """Words without sentence punctuation; dots inside names survive."""
    s = text.lower() if lower else text
    s = s.replace("\u2019", "'").replace("\u2018", "'")
    s = re.sub(r"[\"“”`,!?;:()]", " ", s)
    s = re.sub(r"\.(?=\s|$)", " ", s)
    s = re.sub(r"(?<=\s)'|'(?=\s|$)", " ", s)
    return " ".join(s.split())


def _strip_fillers(s: str) -> tuple[int, int]:
    """The span of ``s`` left once leading and trailing fillers are removed."""
    start, end = 0, len(s)
    changed = True
    while changed:
        changed = False
        for f in _LEADING_FILLERS:
            rest = s[start:end]
            if rest == f or rest.startswith(f + " "):
                start, changed = min(end, start + len(f) + 1), True
        for f in _TRAILING_FILLERS:
            if s[start:end].endswith(" " + f):
                end, changed = end - len(f) - 1, True
    return start, end


def _target(raw: str) -> tuple[str, Want]:
    """ "the file utils slash io dot py" → ("utils/io.py", "file");
    "the guide in the docs folder" → ("docs/guide", "")."""
    m = re.match(r"^(?P<name>.+?) (?:in|inside|under) (?P<dir>.+)$", raw)
    if m:
        name, name_want = _target(m.group("name"))
        folder, _ = _target(m.group("dir"))
        if name and folder:
            return f"{folder}/{name}", name_want
    raw = re.sub(r"^(?:the )?(?:first (?:few )?lines|top|beginning|start) of ", "", raw)
    words = raw.split()
    want: Want = ""
    while words and words[0] in _TARGET_LEAD:
        w = words.pop(0)
        want = "dir" if w in ("folder", "directory", "dir") else ("file" if w == "file" else want)
    while words and words[-1] in {"file", "folder", "directory", "dir", "please"}:
        w = words.pop()
        want = "file" if w == "file" else ("dir" if w != "please" else want)
    normalised = normalise_spoken_name(" ".join(words))
    if has_extension(normalised) and not want:
        want = "file"
    return normalised, want


def _term(raw: str) -> str:
    """A search term as said: fillers and articles off, TODO spelled as in code."""
    words = raw.split()
    skip = {"the", "a", "an", "all", "any", "for", "word", "string", "text"}
    while words and words[0].lower() in skip:
        words.pop(0)
    term = " ".join(words).strip("'")
    term = re.sub(r"(?<=\w) (?:dot) (?=\w)", ".", term)  # "self dot path" → "self.path"
    term = re.sub(r"(?<=\w) underscore (?=\w)", "_", term)
    return _TODO.get(term.lower(), term)


def _count(s: str) -> int:
    m = re.search(r"\b(last|recent|latest|previous|past) (\w+) commits\b", s)
    if m:
        word = m.group(2)
        n = int(word) if word.isdigit() else NUMBER_WORDS.get(word, 5)
        return max(1, min(n, 20))
    return 1 if re.search(r"\b(last|latest|previous) commit\b", s) else 5


def _runner(s: str) -> str:
    return next((family for pat, family in _RUNNER_WORDS if re.search(pat, s)), "")


def spoken_command(s: str) -> str:
    """ "pytest dash dash verbose" → "pytest --verbose"; "ls src slash voco" → "ls src/voco"."""
    s = re.sub(r"\bdash dash\s+", "--", s)
    s = re.sub(r"\b(?:dash|hyphen|minus)\s+", "-", s)
    s = re.sub(r"\s*\b(?:dot)\b\s*", ".", s)
    s = re.sub(r"\s*\b(?:slash)\b\s*", "/", s)
    s = re.sub(r"\s*\bunderscore\b\s*", "_", s)
    s = re.sub(r"\bpython three\b", "python3", s)
    return " ".join(s.split())


def _looks_like_file(raw: str) -> bool:
    target, want = _target(raw)
    return bool(want) or target.replace(" ", "") in _FILE_WORDS


def parse_utterance(text: str) -> Intent:
    """Classify one user turn. Pure and total: every input yields an Intent."""
    s = clean_utterance(text)
    cased = clean_utterance(text, lower=False)
    if len(cased) != len(s):  # lowercasing changed lengths (rare Unicode): no case
        cased = s
    if not s:
        return Intent("empty")
    simple: tuple[tuple[re.Pattern[str], IntentKind], ...] = (
        (_STOP, "stop"),
        (_GREETING, "greeting"),
        (_THANKS, "thanks"),
        (_ACK, "ack"),
    )
    for pattern, kind in simple:
        if pattern.match(s):
            return Intent(kind)
    start, end = _strip_fillers(s)
    s, cased = s[start:end], cased[start:end]
    if not s:
        return Intent("ack")
    if _STOP.match(s):
        return Intent("stop")
    if _HELP.match(s):
        return Intent("help")
    if _WHERE_AM_I.search(s):
        return Intent("where_am_i")
    if _RUN_TESTS.search(s):
        return Intent("run_tests", command=_runner(s))
    words = s.split()
    if words[0] == "make" and len(words) > 1 and words[1] not in _NOT_MAKE_TARGETS:
        return Intent("run_command", command=spoken_command(s))
    if words[0] in _WRITE_VERBS:
        return Intent("needs_llm", action=_WRITE_VERBS[words[0]])
    git: tuple[tuple[re.Pattern[str], IntentKind], ...] = (
        (_GIT_BRANCH, "git_branch"),
        (_GIT_LOG, "git_log"),
        (_GIT_STATUS, "git_status"),
        (_GIT_DIFF, "git_diff"),
    )
    for pattern, kind in git:
        if pattern.search(s):
            return Intent(kind, count=_count(s) if kind == "git_log" else 0)
    if m := _RUN_COMMAND.match(s):
        cmd = spoken_command(m.group("cmd"))
        if cmd.split()[0] in PROGRAMS:
            return Intent("run_command", command=cmd)
        return Intent("needs_llm", action="Running that")
    if words[0] == "git":
        if len(words) > 1 and words[1] in _READ_ONLY_GIT:
            return Intent("run_command", command=spoken_command(s))
        return Intent("needs_llm", action="Changing the git repository")
    if words[0] in _BARE_PROGRAMS:
        return Intent("run_command", command=spoken_command(s))
    return _parse_lookup(s, cased)


def _parse_lookup(s: str, cased: str) -> Intent:
    """Search, locate, list and open: everything that names code or a file.

    Search terms are taken from ``cased`` (same positions as ``s``): code is
    case-sensitive, and the recogniser's "TODO" or "MyClass" must survive.
    """

    def said(m: re.Match[str]) -> str:
        return _term(cased[m.start("t") : m.end("t")])

    for pattern in _DEFINE:
        if m := pattern.match(s):
            return Intent("define", target=said(m))
    for pattern in _USAGE:
        if m := pattern.match(s):
            return Intent("search", target=said(m))
    if (m := _LOCATE[0].match(s)) and not s.startswith("where am i"):
        raw = m.group("t")
        if _looks_like_file(raw):
            target, want = _target(raw)
            return Intent("locate", target=target, want=want)
        return Intent("define", target=said(m))
    if (m := _LOCATE[1].match(s)) and _looks_like_file(m.group("t")):
        target, want = _target(m.group("t"))
        return Intent("locate", target=target, want=want)
    if (m := _SEARCH.match(s)) and not s.startswith("look at"):
        scope = normalise_spoken_name(m.group("scope") or "")
        return Intent("search", target=said(m), scope=scope)
    for pattern in _LIST:
        if m := pattern.match(s):
            target, _ = _target(m.group("t") or "")
            if target.lower() in _ROOT_NAMES:  # "in this project", "in here"
                target = ""
            return Intent("list", target=target, want="dir")
    for pattern in (_WHATS_IN, _WHAT_SAYS, _OPEN):
        if m := pattern.match(s):
            target, want = _target(m.group("t"))
            if target:
                return Intent("open", target=target, want=want)
    target, want = _target(s)
    if want == "file" and len(s.split()) <= 6 and s.split()[0] not in _NOT_A_NAME:
        return Intent("open", target=target, want=want)  # just a file name: "main dot py"
    return Intent("needs_llm", action="")
