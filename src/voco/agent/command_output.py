"""``execute_command`` results → spoken sentences: test runners, git, anything else.

A command's output is for eyes, not ears; what a listener wants is the verdict.
For tests that is the closing tally each runner prints (pytest "3 failed, 45
passed", jest/vitest "Tests: ...", mocha "12 passing", cargo "test result: ...",
go "ok"/"FAIL" per package) and the first failing test; for git the branch and
counts; for anything else the exit status and the last line it printed.
"""

from __future__ import annotations

import re
from typing import Any

from voco.agent.spoken_names import speak_identifier, speak_name, speak_path
from voco.agent.summaries import error_text, join_words, plural, trim_words

_TEST_COMMAND = re.compile(
    r"\b(pytest|jest|vitest|mocha)\b|\b(npm|yarn|pnpm)( run)? test\b|\bcargo test\b"
    r"|\bgo test\b|\bmake test\b|\bunittest\b|\btox\b"
)
_COUNT = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|passing|failing|"
    r"pending|todo|total)\b"
)
_DIFF_TOTALS = re.compile(
    r"(\d+) files? changed(?:, (\d+) insertions?\(\+\))?(?:, (\d+) deletions?\(-\))?"
)
_ORDER = (
    "failed",
    "error",
    "packages failed",
    "passed",
    "packages passed",
    "skipped",
    "xfailed",
    "xpassed",
    "pending",
    "todo",
)


def is_test_command(command: str) -> bool:
    return bool(_TEST_COMMAND.search(command))


def _output(res: dict[str, Any]) -> str:
    return f"{res.get('stdout') or ''}\n{res.get('stderr') or ''}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def parse_test_counts(output: str) -> dict[str, int]:
    """The closing tally of common test runners, as {"passed": n, "failed": m, ...}."""
    counts: dict[str, int] = {}
    cargo = re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", output)
    if cargo:
        for passed, failed, ignored in cargo:
            counts["passed"] = counts.get("passed", 0) + int(passed)
            counts["failed"] = counts.get("failed", 0) + int(failed)
            counts["skipped"] = counts.get("skipped", 0) + int(ignored)
        return counts
    go_ok = len(re.findall(r"^ok\s+\S+", output, re.MULTILINE))
    go_fail = len(re.findall(r"^FAIL\s+\S+\s", output, re.MULTILINE))
    if go_ok or go_fail:
        return {"packages passed": go_ok, "packages failed": go_fail}
    lines = output.splitlines()
    mocha = [ln for ln in lines if re.match(r"^\s*\d+ (passing|failing|pending)\b", ln)]
    jest = [ln for ln in lines if re.match(r"^\s*Tests:?\s", ln) and _COUNT.search(ln)]
    other = [ln for ln in lines if _COUNT.search(ln) and re.search(r"passed|failed|error", ln)]
    for line in mocha or jest[-1:] or other[-1:]:
        for n, word in _COUNT.findall(line):
            key = {"passing": "passed", "failing": "failed", "errors": "error"}.get(word, word)
            counts[key] = counts.get(key, 0) + int(n)
    counts.pop("total", None)
    return counts


def first_failure(output: str) -> str:
    """The first failing test's name (and file), said briefly."""
    patterns = (
        r"^FAILED (?P<file>[^:\s]+)::(?P<name>\S+)",  # pytest
        r"^--- FAIL: (?P<name>\S+)",  # go
        r"^test (?P<name>\S+) \.\.\. FAILED",  # cargo
        r"^\s*● (?P<name>.+?)\s*$",  # jest
        r"^\s*\d+\) (?P<name>.+?)\s*$",  # mocha
    )
    for pattern in patterns:
        m = re.search(pattern, output, re.MULTILINE)
        if m:
            name = speak_identifier(
                m.group("name").split("[")[0].replace("::", " ").replace("›", ",")
            )
            name = trim_words(name, 8)
            file = m.groupdict().get("file")
            return f"{name} in {speak_name(file.rsplit('/', 1)[-1])}" if file else name
    return ""


def tests_summary(res: dict[str, Any]) -> str:
    out = _output(res)
    code = res.get("exit_code")
    if code == 5 and "no tests ran" in out:
        return "No tests were collected."
    if re.search(r"missing script:? .?test", out, re.IGNORECASE):
        return "This project's package json has no test script."
    counts = parse_test_counts(out)
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("packages failed", 0)
    ok = code == 0 and not failed
    tally = [
        f"{plural(n, 'package')} {k.split()[1]}" if k.startswith("packages") else f"{n} {k}"
        for k, n in _ordered(counts)
    ]
    if not tally:
        if ok:
            return "The tests passed."
        last = trim_words(_last_line(out), 12)
        return f"The tests failed with exit code {code}." + (f" Last line: {last}" if last else "")
    head = "Tests passed: " if ok else "Tests failed: "
    text = head + join_words(tally) + "."
    if not ok:
        first = first_failure(out)
        if first:
            text += f" The first failure is {first}."
    return text


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    rank = {k: i for i, k in enumerate(_ORDER)}
    items = [(k, n) for k, n in counts.items() if n or k in ("passed", "packages passed")]
    return sorted(items, key=lambda kv: rank.get(kv[0], len(rank)))


# ---------------------------------------------------------------------------- git


def git_status_summary(stdout: str) -> str:
    """From ``git status --porcelain=v1 --branch``."""
    lines = stdout.splitlines()
    head = lines[0][3:] if lines and lines[0].startswith("## ") else ""
    branch = re.split(r"\.\.\.|\s", head.replace("No commits yet on ", ""), maxsplit=1)[0]
    where = "You're not on a branch" if "no branch" in head or not branch else f"You're on {branch}"
    ahead = re.search(r"ahead (\d+)", head)
    behind = re.search(r"behind (\d+)", head)
    if ahead:
        where += f", {plural(int(ahead.group(1)), 'commit')} ahead"
    if behind:
        where += f", {plural(int(behind.group(1)), 'commit')} behind"
    kinds = {"modified": 0, "staged": 0, "untracked": 0, "deleted": 0, "conflicted": 0}
    for line in lines[1:] if head else lines:
        xy = line[:2]
        if xy == "??":
            kinds["untracked"] += 1
        elif "U" in xy or xy in ("AA", "DD"):
            kinds["conflicted"] += 1
        elif "D" in xy:
            kinds["deleted"] += 1
        elif xy[1:2] == "M" or xy[1:2] == "T":
            kinds["modified"] += 1
        elif xy[:1] in "MARC" and xy[:1] != " ":
            kinds["staged"] += 1
    parts = [f"{n} {k}" for k, n in kinds.items() if n]
    if not parts:
        return f"{where}. The working tree is clean."
    total = sum(kinds.values())
    return f"{where}. {plural(total, 'file')} changed: {join_words(parts)}."


def git_diff_summary(stdout: str) -> str:
    """From ``git diff --stat``."""
    m = _DIFF_TOTALS.search(stdout)
    if not m:
        return "There are no unstaged changes."
    files, added, removed = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    stats = re.findall(r"^\s*(\S.*?)\s+\|\s+(\d+)", stdout, re.MULTILINE)
    text = f"{plural(files, 'file')} changed: {plural(added, 'line')} added and {removed} removed."
    if stats:
        biggest = max(stats, key=lambda s: int(s[1]))[0].split(" => ")[-1].strip("{} ")
        text += f" Most changes are in {speak_path(biggest)}."
    return text


def porcelain_paths(stdout: str) -> tuple[list[str], list[str]]:
    """(changed, untracked) paths from ``git status --porcelain`` (v1)."""
    changed: list[str] = []
    untracked: list[str] = []
    for line in stdout.splitlines():
        if len(line) < 4 or line.startswith("## "):
            continue
        path = line[3:].split(" -> ")[-1].strip().strip('"')
        (untracked if line[:2] == "??" else changed).append(path)
    return changed, untracked


def _some(paths: list[str], shown: int) -> str:
    names = [speak_path(p) for p in paths[:shown]]
    left = len(paths) - len(names)
    return f"{', '.join(names)} and {left} more" if left else join_words(names)


def changes_summary(diff_stat: str, porcelain: str) -> str:
    """From ``git diff --stat HEAD`` and ``git status --porcelain``: how much changed
    since the last commit, then which files (untracked ones said apart)."""
    changed, untracked = porcelain_paths(porcelain)
    m = _DIFF_TOTALS.search(diff_stat)
    if not m and not changed and not untracked:
        return "Nothing has changed since the last commit."
    parts: list[str] = []
    if m:
        files, added, removed = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
        parts.append(
            f"Since the last commit, {plural(files, 'file')} changed: "
            f"{plural(added, 'line')} added and {removed} removed."
        )
    else:
        parts.append("No tracked file changed since the last commit.")
    if changed:
        parts.append(f"{'It is' if len(changed) == 1 else 'They are'} {_some(changed, 3)}.")
    if untracked:
        n = len(untracked)
        new = f"{plural(n, 'new file')} {'is' if n == 1 else 'are'} untracked"
        parts.append(f"{new}: {_some(untracked, 2)}.")
    return " ".join(parts)


def git_log_summary(stdout: str, budget: int = 34) -> str:
    """From ``git log --oneline``: the messages, not the hashes."""
    subjects = [ln.split(" ", 1)[1] if " " in ln else ln for ln in stdout.splitlines() if ln]
    if not subjects:
        return "There are no commits yet."
    said: list[str] = []
    used = 0
    for s in subjects:
        s = trim_words(s.strip(), 8)
        if said and used + len(s.split()) > budget:
            break
        said.append(s)
        used += len(s.split())
    more = len(subjects) - len(said)
    head = "The last commit is" if len(subjects) == 1 else f"The last {len(subjects)} commits are"
    tail = f", and {more} more" if more else ""
    return f"{head}: {'; '.join(said)}{tail}."


def git_branch_summary(stdout: str) -> str:
    branch = stdout.strip()
    return f"You're on branch {branch}." if branch else "You're not on a branch; HEAD is detached."


# ---------------------------------------------------------------------------- dispatch


def command_summary(command: str, result: dict[str, Any]) -> str:
    """The spoken verdict for any ``execute_command`` result."""
    if result.get("status") != "success":
        return error_text("execute_command", {"command": command}, result)
    res = result.get("result") or {}
    if res.get("timed_out"):
        return "That command took too long, so it was stopped after 30 seconds."
    code = res.get("exit_code")
    out = _output(res)
    program = command.split()[0] if command.split() else command
    if code == 127 or re.search(r"command not found|not recognized as", out):
        return f"{speak_name(program)} isn't installed on your computer."
    if command.startswith("git ") and "not a git repository" in out:
        return "This folder isn't a git repository."
    if is_test_command(command):
        return tests_summary(res)
    if code == 0 and command.startswith("git "):
        stdout = str(res.get("stdout") or "")
        for prefix, summarise in (
            ("git status", git_status_summary),
            ("git diff", git_diff_summary),
            ("git log", git_log_summary),
            ("git branch --show-current", git_branch_summary),
        ):
            if command.startswith(prefix):
                return summarise(stdout)
    last = trim_words(_last_line(out), 15)
    if code == 0:
        return f"Done. The last line was: {last}" if last else "Done, with no output."
    text = f"That failed with exit code {code}."
    return text + (f" The last line was: {last}" if last else "")
