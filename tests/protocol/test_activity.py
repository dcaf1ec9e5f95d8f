"""What an action did, as shown in the page: capped, plain text, honest outcome."""

from __future__ import annotations

from voco.protocol import activity as a


def test_ansi_and_control_characters_are_removed():
    text, cut = a.plain("\x1b[31mred\x1b[0m \x1b]0;title\x07ok\x08\x00\r\nnext\tline")
    assert text == "red ok\nnext\tline" and not cut


def test_output_is_capped_and_says_so():
    d = a.detail("execute_command", {"command": "yes"}, {"exit_code": 0, "stdout": "y\n" * 10_000})
    assert d is not None and d.stdout is not None
    assert len(d.stdout) == a.TEXT_CAP and d.shown_truncated


def test_git_status_names_the_files():
    porcelain = "## main\n M src/app.py\n?? notes.txt\nR  old.py -> new.py\n"
    payload = {"command": "git status --porcelain=v1 --branch"}
    assert a.git_changed_files(porcelain) == ["src/app.py", "notes.txt", "new.py"]
    line = a.summarize("execute_command", payload, "success", {"exit_code": 0, "stdout": porcelain})
    assert line == "3 changed: src/app.py, notes.txt, new.py"
    long = (
        "On branch main\nChanges not staged for commit:\n"
        '  (use "git add <file>..." to update what will be committed)\n'
        "\tmodified:   README.md\n\nUntracked files:\n\tscratch.py\n"
    )
    assert a.git_changed_files(long) == ["README.md", "scratch.py"]
    clean = a.summarize(
        "execute_command", payload, "success", {"exit_code": 0, "stdout": "## main\n"}
    )
    assert clean == "clean: nothing changed"
    d = a.detail("execute_command", payload, {"exit_code": 0, "stdout": porcelain})
    assert d is not None and d.changed_files == ["src/app.py", "notes.txt", "new.py"]


def test_a_non_zero_exit_is_a_failure():
    assert a.command_failed({"exit_code": 2})
    assert not a.command_failed({"exit_code": 0})
    assert not a.command_failed({"entries": []})


def test_each_action_kind_has_its_detail():
    f = a.detail(
        "read_file", {"path": "a.py"}, {"content": "x = 1\n", "size": 6, "truncated": False}
    )
    assert f is not None and f.kind == "file" and f.excerpt == "x = 1\n"
    ls = a.detail(
        "list_dir", {"path": "."}, {"entries": [{"name": "src", "kind": "dir", "size": 0}]}
    )
    assert ls is not None and ls.entries is not None and ls.entries[0].name == "src"
    hits = a.detail(
        "search_text",
        {"pattern": "TODO"},
        {"matches": [{"path": "a.py", "line": 3, "text": "# TODO \x1b[1mx"}]},
    )
    assert hits is not None and hits.matches is not None and hits.matches[0].text == "# TODO x"
    w = a.detail(
        "write_file", {"path": "a.py", "content": "x = 2\n"}, {"bytes_written": 6}, before="x = 1\n"
    )
    assert w is not None and w.diff is not None
    assert "-x = 1" in w.diff and "+x = 2" in w.diff
    new = a.detail("write_file", {"path": "b.py", "content": "y\n"}, {"bytes_written": 2})
    assert new is not None and new.diff is not None and "/dev/null" in new.diff
    unknown = a.detail(
        "write_file", {"path": "a.py", "content": "z\n"}, {"bytes_written": 2}, before_known=False
    )
    assert unknown is not None and unknown.diff is None and unknown.excerpt == "z\n"
    assert a.detail("read_file", {"path": "a.py"}, None) is None


def test_text_that_reorders_or_hides_itself_is_shown_escaped():
    # the sandbox's rule (voco.common.safe_text): a right-to-left override or a
    # zero-width space must not make a listing read as something it is not
    text, _ = a.plain("ls\u202e fr- mr\u200b\nnext\\line\tend")
    assert text == "ls\\u202e fr- mr\\u200b\nnext\\line\tend"
