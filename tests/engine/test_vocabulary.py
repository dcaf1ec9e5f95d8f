"""The project vocabulary: bounded learning from MCP results and transcript normalisation."""

import pytest

from voco.engine.mcp_port import SessionMcpPort
from voco.engine.vocabulary import ProjectVocabulary
from voco.protocol.messages import McpResponse

ROOT = {
    "entries": [
        {"name": n, "kind": "file", "size": 1}
        for n in ("README.md", "main.py", "spoken_names.py", "Makefile", "setup.cfg", "server.py")
    ]
    + [{"name": "src", "kind": "dir", "size": 0}]
}


@pytest.fixture
def vocab() -> ProjectVocabulary:
    v = ProjectVocabulary()
    v.observe("list_dir", {"path": "."}, ROOT)
    v.observe(
        "search_text",
        {"pattern": "parse_config"},
        {"matches": [{"path": "src/app/config.py", "line": 3, "text": "def parse_config(p):"}]},
    )
    return v


def test_learns_listed_names_searched_symbols_and_paths(vocab: ProjectVocabulary) -> None:
    terms = vocab.terms()
    assert {"README.md", "main.py", "src", "parse_config", "config.py"} <= set(terms)
    assert terms[0] in ("parse_config", "config.py")  # the latest observation ranks first
    vocab.observe("read_file", {"path": "docs/guide/intro.md"}, {"content": "x"})
    assert {"docs", "guide", "intro.md"} <= set(vocab.terms(3))


def test_malformed_results_teach_nothing() -> None:
    v = ProjectVocabulary()
    v.observe("list_dir", {"path": 3}, {"entries": "nope"})
    v.observe("list_dir", {}, {"entries": [{"name": 5}, "x", {"name": "a b/../c"}]})
    v.observe("search_text", {"pattern": "foo bar ("}, {"matches": [None, {"path": 1}]})
    v.observe("run_command", {}, None)
    assert v.terms() == []


def test_is_bounded_and_keeps_recent_and_frequent_names() -> None:
    v = ProjectVocabulary(capacity=10, per_result=5)
    for _ in range(3):
        v.add(["often.py"])
    v.add([f"f{i}.py" for i in range(50)])  # one result adds at most what add gets
    assert len(v) <= 10
    for i in range(30):
        v.add([f"new{i}.py"])
    assert len(v) == 10
    assert "new29.py" in v.terms() and "new0.py" not in v.terms()
    v2 = ProjectVocabulary(capacity=3)
    v2.observe("list_dir", {}, {"entries": [{"name": f"n{i}.py"} for i in range(100)]})
    assert len(v2) == 3


@pytest.mark.parametrize(
    ("said", "seen"),
    [
        ("Open the read me.", "Open the README.md."),
        ("show me the readme file", "show me the README.md file"),
        ("What does main dot py do?", "What does main.py do?"),
        ("What does Main.py do?", "What does main.py do?"),
        ("open spoken names dot py", "open spoken_names.py"),
        ("open the make file", "open the Makefile"),
        ("open setup dot c f g please", "open setup.cfg please"),
        ("where is parse config defined", "where is parse_config defined"),
        # a verb phrase, not a name: no "the"/"open" before it, no "file" after it
        ("Read me the first line of main dot py.", "Read me the first line of main.py."),
        # an English word that is also a file stem stays a word
        ("the server is slow", "the server is slow"),
        # names that do not exist are left as spoken
        ("open foo dot py", "open foo dot py"),
        ("open the change log", "open the change log"),
    ],
)
def test_normalises_spoken_forms_to_existing_names_only(
    vocab: ProjectVocabulary, said: str, seen: str
) -> None:
    assert vocab.normalise(said) == seen


def test_ambiguous_names_are_left_as_spoken() -> None:
    v = ProjectVocabulary()
    v.add(["README.md", "README.rst"])
    assert v.normalise("open the read me") == "open the read me"
    assert v.normalise("open read me dot md") == "open README.md"


def test_empty_vocabulary_changes_nothing() -> None:
    assert ProjectVocabulary().normalise("open main dot py") == "open main dot py"


async def test_mcp_port_feeds_successful_results_to_the_observer() -> None:
    seen: list[tuple[str, object]] = []
    sent: list[str] = []
    port: SessionMcpPort

    async def send(req) -> None:  # the runtime answers at once
        sent.append(req.id)
        status = "success" if req.action == "list_dir" else "error"
        port.resolve(McpResponse(id=req.id, status=status, result=ROOT, error=None))

    def observe(action: str, payload: dict, result: object) -> None:
        seen.append((action, result))
        raise RuntimeError("an observer bug")  # must not cost the call its answer

    port = SessionMcpPort(send, on_result=observe)
    ok = await port.call("c1", "list_dir", {"path": "."})
    failed = await port.call("c2", "read_file", {"path": "x"})
    assert ok.status == "success" and failed.status == "error"
    assert seen == [("list_dir", ROOT)]


@pytest.mark.parametrize(
    ("heard", "written"),
    [
        ("How many lines are in spoken_namez.py?", "How many lines are in spoken_names.py?"),
        ('open "servers.py", please', 'open "server.py", please'),
        ("show me mian.py", "show me mian.py"),  # too far from main.py: left as heard
        ("open spoken_names.md", "open spoken_names.md"),  # no known .md file near it
        ("the vocabulary is fine", "the vocabulary is fine"),  # not a file name
    ],
)
def test_a_file_name_heard_slightly_wrong_is_the_known_one(
    vocab: ProjectVocabulary, heard: str, written: str
) -> None:
    assert vocab.normalise(heard) == written


def test_a_near_name_between_two_known_files_is_left_as_heard() -> None:
    v = ProjectVocabulary()
    v.add(["parser_a.py", "parser_b.py"])
    assert v.normalise("open parser_c.py") == "open parser_c.py"
