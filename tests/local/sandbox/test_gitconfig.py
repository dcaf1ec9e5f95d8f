"""The strict reader of repository git config (Medium 3)."""

from __future__ import annotations

import pytest

from voco.local.sandbox.gitconfig import dangerous_entries

pytestmark = pytest.mark.timeout(10)

CLONE = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = true
[remote "origin"]
\turl = https://example.com/x.git
\tfetch = +refs/heads/*:refs/remotes/origin/*
[branch "main"]
\tremote = origin
\tmerge = refs/heads/main ; comment
[user]
\tname = "A \\"quoted\\" name" # comment
"""


def test_an_ordinary_clone_config_is_clean() -> None:
    assert dangerous_entries(CLONE) == []


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[diff]\n\texternal = sh\n", "diff.external"),
        ('[diff "x"]\n\ttextconv = sh\n', "diff.textconv"),
        ('[filter "lfs"]\n\tclean = sh\n', "filter.clean"),
        ("[gpg]\n\tprogram = sh\n", "gpg.program"),
        ('[gpg "ssh"]\n\tprogram = sh\n', "gpg.program"),
        ("[alias]\n\tst = !sh\n", "alias.st"),
        ("[core]\n\tfsmonitor = sh\n", "core.fsmonitor"),
        ("[core]\n\tsshCommand = sh\n", "core.sshCommand"),
        ("[core]\n\thooksPath = .githooks\n", "core.hooksPath"),
        ('[hook "x"]\n\tcommand = sh\n', "hook.command"),
        ("[include]\n\tpath = ../x\n", "include.path"),
        ('[includeIf "gitdir:/x/"]\n\tpath = ../x\n', "includeIf.path"),
        ("[DIFF]\n\tEXTERNAL = sh\n", "DIFF.EXTERNAL"),
        ("[diff.x]\n\ttextconv = sh\n", "diff.textconv"),
        ("[alias] st = !sh\n", "alias.st"),
        ('[merge "x"]\n\tdriver = sh\n', "merge.driver"),
    ],
)
def test_keys_that_run_programs_are_found(text: str, key: str) -> None:
    assert key in dangerous_entries(text)


@pytest.mark.parametrize(
    "text",
    [
        "[core\n\tx = 1\n",  # bad header
        "\tx = 1\n",  # key before any section
        '[core]\n\tx = "unterminated\n',
        "[core]\n\t!x = 1\n",
    ],
)
def test_what_cannot_be_parsed_counts_as_dangerous(text: str) -> None:
    assert "unparsable" in dangerous_entries(text)


def test_a_continued_value_cannot_hide_a_section() -> None:
    text = "[core]\n\tx = a \\\n[alias]\n[core]\n\tpager = less\n"
    assert "core.pager" in dangerous_entries(text)
    text = "[user]\n\tname = a \\\n[core]\n\tpager = x\n"
    # git reads "[core]" as part of user.name; then `pager` under [user] is harmless
    # to git, but we still flag the suffix: conservative either way.
    assert dangerous_entries(text) == ["user.pager"]
