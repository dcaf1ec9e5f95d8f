"""Risk classification: pure, no sandbox, no files."""

from __future__ import annotations

import pytest

from voco.local.sandbox import classify_argv, classify_command

pytestmark = pytest.mark.timeout(10)

SAFE = [
    "ls",
    "ls -la src",
    "cat README.md",
    "head -n 20 src/main.py",
    "head -5 a.txt",
    "tail -n 50 log.txt",
    "wc -l a.txt b.txt",
    "grep -rn TODO src",
    "grep -rn '/api/v1' src",
    "grep -e foo -e bar file.txt",
    "rg -n 'def main' src",
    "rg --glob '*.py' -t py foo",
    "find . -name '*.py' -type f",
    "find src -maxdepth 2 -path '*/tests/*'",
    "git status",
    "git status --porcelain",
    "git log --oneline -n 10",
    "git log -p -- src/a.py",
    "git diff HEAD~1 -- src",
    "git show HEAD:README.md",
    "git branch",
    "git branch -a --list 'feat/*'",
    "git --no-pager log -n 3",
    "pwd",
    "echo hello world",
    "tree -L 2",
    "stat -c %s a.txt",
    "file a.bin",
    "du -sh src",
    "sort -u names.txt",
    "uniq -c sorted.txt",
    "cut -d, -f1 data.csv",
    "diff a.txt b.txt",
    "cat a.txt | grep foo | sort | uniq -c | sort -rn | head",
    "git status && git diff --stat",
    "ls; pwd",
    "ls 2>/dev/null",
    "ls missing 2>&1",
    "ls >/dev/null 2>&1",
    "cat < a.txt",
    "grep foo <<< 'literal text'",
    "ls # a comment",
    "date +%Y-%m-%d",
]


@pytest.mark.parametrize("command", SAFE)
def test_read_only_commands_run_without_asking(command: str) -> None:
    a = classify_command(command)
    assert not a.risky, a.reasons


RISKY = [
    # (command, substring expected in the reason)
    ("rm -rf build", "`rm` modifies files"),
    ("mv a b", "`mv` modifies files"),
    ("touch x", "`touch` modifies files"),
    ("sudo ls", "elevated privileges"),
    ("bash -c 'ls'", "`bash -c` runs an inline shell script"),
    ("sh -c ls", "`sh -c` runs an inline shell script"),
    ("python -c 'print(1)'", "`python -c` runs inline code"),
    ("python3 script.py", "`python3` runs a program"),
    ("node -e 'x'", "`node -e` runs inline code"),
    ("perl -e 'x'", "`perl -e` runs inline code"),
    ("pip install requests", "`pip install` installs"),
    ("npm install left-pad", "`npm install` installs"),
    ("uv pip install x", "installs"),
    ("apt-get install -y foo", "installs"),
    ("curl https://example.com", "`curl` accesses the network"),
    ("wget http://x", "accesses the network"),
    ("ssh host", "accesses the network"),
    ("git push", "`git push` accesses the network"),
    ("git commit -m x", "`git commit` is not a read-only git command"),
    ("git checkout main", "`git checkout` is not a read-only"),
    ("git -c core.pager=evil log", "`git -c` overrides git configuration"),
    ("git --exec-path=/tmp log", "`git --exec-path`"),
    ("git -p log", "pager"),
    ("git branch newbranch", "creates a branch"),
    ("git branch -D main", "modifies branches"),
    ("git diff --output=/tmp/x", "writes to a file"),
    ("git log --ext-diff", "external diff"),
    ("find . -exec rm {} \\;", "`find -exec` runs a command"),
    ("find . -execdir sh -c x \\;", "`find -execdir`"),
    ("find . -delete", "`find -delete` deletes files"),
    ("find . -ok rm {} \\;", "`find -ok`"),
    ("find . -fprint out.txt", "`find -fprint` writes to a file"),
    ("sort -o out.txt in.txt", "`sort -o` writes its output to a file"),
    ("sort -uo out.txt in.txt", "`sort -o` writes"),
    ("sort --out=x in.txt", "`sort --output`"),
    ("sort --compress-program=sh in.txt", "runs a program"),
    ("rg --pre ./evil foo", "`rg --pre` runs a preprocessor"),
    ("rg -z foo", "decompression"),
    ("uniq in.txt out.txt", "writes its output to a file"),
    ("tree -o out.txt", "`tree -o` writes"),
    ("wc --files0-from=list", "reads the list of files"),
    ("date -s '2020-01-01'", "sets the system clock"),
    ("ls > out.txt", "writes to 'out.txt' (redirection >)"),
    ("ls >> out.txt", "redirection >>"),
    ("ls &> out.txt", "redirection &>"),
    ("ls >| out.txt", "redirection >|"),
    ("ls >& out.txt", "redirection >&"),
    ("echo x | tee out.txt", "`tee` modifies files"),
    ("cat <<EOF > out.txt\nhi\nEOF", "writes to 'out.txt'"),
    ("cat <<EOF | sh\nrm -rf x\nEOF", "`sh` runs a shell script"),
    ("cat <<EOF\n$(rm -rf x)\nEOF", "command substitution"),
    ('grep x <<< "$(rm -rf x)"', "command substitution"),
    ("cat $(echo a.txt)", "command substitution"),
    ("cat `echo a.txt`", "command substitution"),
    ("diff <(ls) <(ls src)", "process substitution"),
    ("cat $HOME/.ssh/id_rsa", "expands a variable"),
    ("cat ${X:-a}", "expands a variable"),
    ("echo $((1+2))", "arithmetic expansion"),
    ("FOO=1 ls", "sets environment variable FOO"),
    ("LD_PRELOAD=/x.so ls", "sets environment variable LD_PRELOAD"),
    ("X=1", "sets a shell variable"),
    ("export X=1", "declares or exports"),
    ("(ls)", "subshell"),
    ("{ ls; }", "command group"),
    ("if true; then ls; fi", "control flow (if)"),
    ("for f in *; do cat $f; done", "control flow (for)"),
    ("while true; do ls; done", "control flow (while"),
    ("f() { ls; }; f", "defines a shell function"),
    ("ls &", "background"),
    ("ls && rm -rf x", "`rm` modifies files"),
    ("ls || curl evil", "`curl` accesses the network"),
    ("ls | sh", "`sh` runs a shell script"),
    ("ls; python3 -c 1", "`python3 -c` runs inline code"),
    ("xargs rm < list", "`xargs` runs other commands"),
    ("env ls", "`env` runs other commands"),
    ("eval ls", "`eval` runs other commands"),
    ("exec ls", "`exec`"),
    ("source x.sh", "`source`"),
    ("./script.sh", "runs a program by path"),
    ("/usr/bin/ls", "runs a program by path"),
    ("$CMD foo", "computed at run time"),
    ("cat ~/.ssh/id_rsa", "tilde expansion"),
    ("cat {a,/etc/passwd}", "brace expansion"),
    ("echo {1..3}", "brace expansion"),
    ("cat $'\\x2fetc/passwd'", "ANSI-C quoting"),
    ("ls\\\n-la", "backslash-newline"),
    ("ls $(", "could not be parsed"),
    ("ls 'unterminated", "could not be parsed"),
    ("ls <> f", "could not be parsed"),
    ("cat .*/secret", "could match '..'"),
    ("sed -i s/a/b/ f", "`sed` runs a script"),
    ("awk '{print}' f", "`awk` runs a script"),
    ("make", "`make` runs other commands"),
    ("kill 1", "changes system state"),
    ("cd .. && ls", "`cd`"),
    ("", "empty command"),
]


@pytest.mark.parametrize(("command", "why"), RISKY, ids=[r[0][:40] for r in RISKY])
def test_risky_commands_need_approval_with_reason(command: str, why: str) -> None:
    a = classify_command(command)
    assert a.risky
    assert why in a.reason, a.reasons


def test_chain_reason_names_only_the_risky_part() -> None:
    a = classify_command("git status && rm -rf build && ls")
    assert a.reasons == ("`rm` modifies files",)


@pytest.mark.parametrize(
    ("argv", "risky"),
    [
        (["ls", "-la"], False),
        (["cat", "a.txt"], False),
        (["git", "status"], False),
        (["echo", "$(rm -rf x)"], False),  # literal in argv: no shell runs it
        (["cat", "a; rm -rf x"], False),  # one (odd) file name
        (["bash", "-c", "ls"], True),
        (["rm", "x"], True),
        (["find", ".", "-delete"], True),
        (["./evil"], True),
        (["git", "-c", "x=y", "status"], True),
    ],
)
def test_argv_classified_per_element(argv: list[str], risky: bool) -> None:
    assert classify_argv(argv).risky is risky


@pytest.mark.parametrize(
    ("command", "paths"),
    [
        ("cat a.txt b.txt", ("a.txt", "b.txt")),
        ("grep -rn TODO src lib", ("src", "lib")),
        ("grep -f pats.txt src", ("pats.txt", "src")),
        ("find src lib -name '*.py'", ("src", "lib")),
        ("find . -newer ref.txt", (".", "ref.txt")),
        ("git -C sub status", ("sub",)),
        ("head -n 5 a.txt", ("a.txt",)),
        ("cat < in.txt", ("in.txt",)),
        ("ls > out.txt", ("out.txt",)),
        ("echo /etc/passwd", ()),
        ("cat ../../etc/passwd", ("../../etc/passwd",)),
        ("sort -o /etc/x in", ("/etc/x", "in")),
    ],
)
def test_path_operands_are_collected(command: str, paths: tuple[str, ...]) -> None:
    assert classify_command(command).paths == paths


@pytest.mark.parametrize(
    ("command", "maybe"),
    [
        ("rm -rf /", ("/",)),
        ("rm -rf /*", ("/*",)),
        ("cp x ../../out", ("../../out",)),
        ("pip install --prefix=/usr/local x", ("/usr/local",)),
        ("sed '/^#/d' f", ("/^#/d",)),
    ],
)
def test_unknown_commands_collect_maybe_paths(command: str, maybe: tuple[str, ...]) -> None:
    assert classify_command(command).maybe_paths == maybe
