"""Per-command policy: the read-only allow-list and why everything else is risky.

Pure and sans-I/O. A command is *safe* (runs without asking) only if its name
is on the allow-list and none of its options is on that command's deny-list;
everything else needs the user's approval, with a reason naming exactly what
made it risky. The deny-lists are the options that turn a read-only tool into
one that writes files or runs programs (``find -exec``, ``sort -o``, ``rg
--pre``, ``git -c`` …). GNU tools and git accept unambiguous abbreviations of
long options (``sort --out=f``), so a long option denies if it is a prefix of a
denied one.

Operands that name files are collected for the caller to check against the
roots with the kernel (see ``paths.Resolver.check_within``). For commands that
are not allow-listed we cannot know which arguments are paths, so we collect
"maybe" paths — absolute arguments and arguments containing ``..`` — which the
caller checks too, so that ``rm -rf /`` is a scope violation, not a question.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

DEV_NULL = "/dev/null"


@dataclass
class Findings:
    """What classification found; accumulated across every command in a line."""

    reasons: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    maybe_paths: list[str] = field(default_factory=list)

    def risk(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def path(self, value: str) -> None:
        if value not in ("-", DEV_NULL) and value not in self.paths:
            self.paths.append(value)

    def maybe(self, value: str) -> None:
        if value != DEV_NULL and value not in self.maybe_paths:
            self.maybe_paths.append(value)


@dataclass(frozen=True)
class Spec:
    """How one allow-listed command's arguments are read.

    ``value``: options that consume the next argument; ``path_opts``: those
    whose value is a file; ``deny``: option → reason; ``operands``: what the
    non-option arguments are (``paths``, ``none`` or ``pattern`` = first is a
    pattern unless ``-e``/``-f`` gave one); ``max_operands``: more are risky
    with ``extra_reason``.
    """

    value: frozenset[str] = frozenset()
    path_opts: frozenset[str] = frozenset()
    deny: Mapping[str, str] = field(default_factory=dict)
    operands: str = "paths"
    max_operands: int | None = None
    extra_reason: str = ""
    pattern_opts: frozenset[str] = frozenset()


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


_FILES0 = "reads the list of files to open from a file (names can't be checked)"

ALLOW: dict[str, Spec] = {
    "ls": Spec(
        value=_fs(
            "-I",
            "--ignore",
            "--hide",
            "-w",
            "--width",
            "-T",
            "--tabsize",
            "--format",
            "--sort",
            "--time",
            "--time-style",
            "--block-size",
            "--quoting-style",
            "--indicator-style",
        )
    ),
    "cat": Spec(),
    "tac": Spec(value=_fs("-s", "--separator")),
    "nl": Spec(value=_fs("-b", "-d", "-f", "-h", "-i", "-l", "-n", "-s", "-v", "-w")),
    "head": Spec(value=_fs("-n", "--lines", "-c", "--bytes")),
    "tail": Spec(
        value=_fs(
            "-n",
            "--lines",
            "-c",
            "--bytes",
            "-s",
            "--sleep-interval",
            "--pid",
            "--max-unchanged-stats",
        )
    ),
    "wc": Spec(deny={"--files0-from": _FILES0}),
    "grep": Spec(
        value=_fs(
            "-e",
            "--regexp",
            "-f",
            "--file",
            "-m",
            "--max-count",
            "-A",
            "-B",
            "-C",
            "--context",
            "--after-context",
            "--before-context",
            "--include",
            "--exclude",
            "--exclude-dir",
            "--exclude-from",
            "--label",
            "-d",
            "--directories",
            "-D",
            "--devices",
        ),
        path_opts=_fs("-f", "--file", "--exclude-from"),
        pattern_opts=_fs("-e", "--regexp", "-f", "--file"),
        operands="pattern",
    ),
    "rg": Spec(
        value=_fs(
            "-e",
            "--regexp",
            "-f",
            "--file",
            "-g",
            "--glob",
            "--iglob",
            "-t",
            "--type",
            "-T",
            "--type-not",
            "--type-add",
            "--type-clear",
            "-m",
            "--max-count",
            "-A",
            "-B",
            "-C",
            "--context",
            "--after-context",
            "--before-context",
            "-M",
            "--max-columns",
            "-d",
            "--max-depth",
            "--max-filesize",
            "-j",
            "--threads",
            "--ignore-file",
            "-r",
            "--replace",
            "--color",
            "--colors",
            "--sort",
            "--sortr",
            "-E",
            "--encoding",
            "--engine",
            "--path-separator",
            "--context-separator",
            "--field-match-separator",
            "--field-context-separator",
            "--dfa-size-limit",
            "--regex-size-limit",
            "--hyperlink-format",
        ),
        path_opts=_fs("-f", "--file", "--ignore-file"),
        pattern_opts=_fs("-e", "--regexp", "-f", "--file"),
        deny={
            "--pre": "`rg --pre` runs a preprocessor program on every file",
            "--pre-glob": "`rg --pre-glob` runs a preprocessor program",
            "-z": "`rg -z` runs decompression programs",
            "--search-zip": "`rg --search-zip` runs decompression programs",
            "--hostname-bin": "`rg --hostname-bin` runs a program",
        },
        operands="pattern",
    ),
    "pwd": Spec(operands="none"),
    "echo": Spec(operands="none"),
    "true": Spec(operands="none"),
    "false": Spec(operands="none"),
    "basename": Spec(value=_fs("-s", "--suffix"), operands="none"),
    "dirname": Spec(operands="none"),
    "tr": Spec(operands="none"),
    "uname": Spec(operands="none"),
    "whoami": Spec(operands="none"),
    "printenv": Spec(operands="none"),
    "which": Spec(operands="none"),
    "tree": Spec(
        value=_fs(
            "-L", "-P", "-I", "--filelimit", "--timefmt", "-H", "-T", "--charset", "--sort", "-o"
        ),
        path_opts=_fs("-o"),
        deny={
            "-o": "`tree -o` writes its output to a file",
            "-R": "`tree -R` writes 00Tree.html files into directories",
        },
    ),
    "stat": Spec(value=_fs("-c", "--format", "--printf")),
    "file": Spec(
        value=_fs(
            "-m",
            "--magic-file",
            "-F",
            "--separator",
            "-e",
            "--exclude",
            "-P",
            "--parameter",
            "-f",
            "--files-from",
        ),
        path_opts=_fs("-m", "--magic-file", "-f", "--files-from"),
        deny={
            "-C": "`file -C` compiles and writes a magic file",
            "--compile": "`file --compile` compiles and writes a magic file",
        },
    ),
    "du": Spec(
        value=_fs(
            "-d",
            "--max-depth",
            "-B",
            "--block-size",
            "-t",
            "--threshold",
            "--time-style",
            "--exclude",
            "-X",
            "--exclude-from",
        ),
        path_opts=_fs("-X", "--exclude-from"),
        deny={"--files0-from": _FILES0},
    ),
    "sort": Spec(
        value=_fs(
            "-k",
            "--key",
            "-t",
            "--field-separator",
            "-S",
            "--buffer-size",
            "--parallel",
            "--batch-size",
            "-T",
            "--temporary-directory",
            "--random-source",
            "-o",
            "--output",
            "--files0-from",
        ),
        path_opts=_fs(
            "-T", "--temporary-directory", "--random-source", "-o", "--output", "--files0-from"
        ),
        deny={
            "-o": "`sort -o` writes its output to a file",
            "--output": "`sort --output` writes its output to a file",
            "--compress-program": "`sort --compress-program` runs a program",
            "--files0-from": _FILES0,
        },
    ),
    "uniq": Spec(
        value=_fs("-f", "--skip-fields", "-s", "--skip-chars", "-w", "--check-chars"),
        max_operands=1,
        extra_reason="`uniq INPUT OUTPUT` writes its output to a file",
    ),
    "cut": Spec(
        value=_fs(
            "-b",
            "--bytes",
            "-c",
            "--characters",
            "-d",
            "--delimiter",
            "-f",
            "--fields",
            "--output-delimiter",
        )
    ),
    "diff": Spec(
        value=_fs(
            "-U",
            "--unified",
            "-I",
            "--ignore-matching-lines",
            "-x",
            "--exclude",
            "-X",
            "--exclude-from",
            "-S",
            "--starting-file",
            "--label",
            "-W",
            "--width",
            "--tabsize",
            "--from-file",
            "--to-file",
        ),
        path_opts=_fs("-X", "--exclude-from", "--from-file", "--to-file"),
    ),
    "cmp": Spec(value=_fs("-i", "--ignore-initial", "-n", "--bytes")),
    "comm": Spec(value=_fs("--output-delimiter")),
    "paste": Spec(value=_fs("-d", "--delimiters")),
    "fold": Spec(value=_fs("-w", "--width")),
    "expand": Spec(value=_fs("-t", "--tabs")),
    "rev": Spec(),
    "strings": Spec(value=_fs("-n", "--bytes", "-t", "--radix", "-e", "--encoding")),
    "od": Spec(
        value=_fs(
            "-A",
            "--address-radix",
            "-j",
            "--skip-bytes",
            "-N",
            "--read-bytes",
            "-t",
            "--format",
            "-w",
            "--width",
        )
    ),
    "md5sum": Spec(),
    "sha1sum": Spec(),
    "sha256sum": Spec(),
    "sha512sum": Spec(),
    "realpath": Spec(
        value=_fs("--relative-to", "--relative-base"),
        path_opts=_fs("--relative-to", "--relative-base"),
    ),
    "readlink": Spec(),
    "date": Spec(
        value=_fs("-d", "--date", "-f", "--file", "-r", "--reference"),
        path_opts=_fs("-f", "--file", "-r", "--reference"),
        deny={
            "-s": "`date -s` sets the system clock",
            "--set": "`date --set` sets the system clock",
        },
        operands="date",
    ),
}

# ------------------------------------------------------------------ git

_GIT_GLOBAL_VALUE = _fs("-C", "--git-dir", "--work-tree", "--namespace")
_GIT_GLOBAL_PATH = _fs("-C", "--git-dir", "--work-tree")
_GIT_GLOBAL_DENY = {
    "-c": "`git -c` overrides git configuration (can run arbitrary programs)",
    "--config-env": "`git --config-env` overrides git configuration",
    "--exec-path": "`git --exec-path` changes where git finds its programs",
    "-p": "`git -p` starts a pager program",
    "--paginate": "`git --paginate` starts a pager program",
}
_GIT_GLOBAL_FLAGS = _fs(
    "--no-pager",
    "-P",
    "--no-replace-objects",
    "--literal-pathspecs",
    "--glob-pathspecs",
    "--noglob-pathspecs",
    "--icase-pathspecs",
    "--no-optional-locks",
    "--bare",
)
_GIT_HISTORY_VALUE = _fs(
    "-n",
    "--max-count",
    "--skip",
    "--since",
    "--after",
    "--until",
    "--before",
    "--author",
    "--committer",
    "--grep",
    "-S",
    "-G",
    "--format",
    "--pretty",
    "--date",
    "-L",
    "-U",
    "--unified",
    "--diff-filter",
    "--encoding",
    "-O",
    "--abbrev",
    "--decorate-refs",
    "--decorate-refs-exclude",
    "--output",
)
_GIT_HISTORY_PATH = _fs("-O", "--output")
_GIT_HISTORY_DENY = {
    "--output": "`git --output` writes to a file",
    "--ext-diff": "`--ext-diff` runs an external diff program",
    "--textconv": "`--textconv` runs text-conversion filter programs",
}
GIT: dict[str, Spec] = {
    "status": Spec(value=_fs("-u", "--untracked-files", "--ignore-submodules", "--column")),
    "log": Spec(value=_GIT_HISTORY_VALUE, deny=_GIT_HISTORY_DENY, path_opts=_GIT_HISTORY_PATH),
    "show": Spec(value=_GIT_HISTORY_VALUE, deny=_GIT_HISTORY_DENY, path_opts=_GIT_HISTORY_PATH),
    "diff": Spec(value=_GIT_HISTORY_VALUE, deny=_GIT_HISTORY_DENY, path_opts=_GIT_HISTORY_PATH),
    "blame": Spec(
        value=_fs("-L", "-S", "--contents", "--date", "--abbrev"), path_opts=_fs("-S", "--contents")
    ),
    "rev-parse": Spec(),
    "ls-files": Spec(
        value=_fs("-x", "--exclude", "-X", "--exclude-from", "--format"),
        path_opts=_fs("-X", "--exclude-from"),
    ),
    "branch": Spec(
        value=_fs(
            "--contains",
            "--no-contains",
            "--merged",
            "--no-merged",
            "--points-at",
            "--sort",
            "--format",
        ),
        deny={
            opt: "`git branch` with this option modifies branches"
            for opt in (
                "-d",
                "-D",
                "--delete",
                "-m",
                "-M",
                "--move",
                "-c",
                "-C",
                "--copy",
                "-f",
                "--force",
                "--set-upstream-to",
                "-u",
                "--unset-upstream",
                "--edit-description",
                "-t",
                "--track",
                "--no-track",
                "--create-reflog",
            )
        },
        operands="none",
    ),
}

# ------------------------------------------------------------------ risky commands

_PRIV = _fs("sudo", "su", "doas", "pkexec", "chroot", "nsenter", "unshare", "setpriv", "capsh")
_SHELLS = _fs("bash", "sh", "zsh", "dash", "ksh", "fish", "csh", "tcsh", "busybox")
_INTERP = _fs(
    "python",
    "python2",
    "python3",
    "node",
    "nodejs",
    "ruby",
    "perl",
    "php",
    "lua",
    "deno",
    "bun",
    "Rscript",
    "julia",
    "tclsh",
    "pwsh",
    "java",
    "osascript",
)
_SCRIPTED = _fs(
    "awk", "gawk", "mawk", "nawk", "sed", "jq", "vim", "vi", "nvim", "emacs", "less", "more", "man"
)
_PKG = _fs(
    "pip",
    "pip3",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "apt",
    "apt-get",
    "dpkg",
    "brew",
    "cargo",
    "gem",
    "uv",
    "uvx",
    "poetry",
    "conda",
    "mamba",
    "pipx",
    "go",
    "composer",
    "snap",
    "dnf",
    "yum",
    "pacman",
    "apk",
    "bundle",
)
_PKG_INSTALL = _fs(
    "install", "i", "add", "get", "update", "upgrade", "sync", "ci", "remove", "uninstall"
)
_NET = _fs(
    "curl",
    "wget",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "nc",
    "ncat",
    "netcat",
    "telnet",
    "ftp",
    "socat",
    "ping",
    "dig",
    "nslookup",
    "host",
    "aria2c",
    "http",
    "https",
)
_WRITE = _fs(
    "rm",
    "rmdir",
    "mv",
    "cp",
    "dd",
    "mkdir",
    "touch",
    "chmod",
    "chown",
    "chgrp",
    "ln",
    "truncate",
    "shred",
    "tee",
    "install",
    "unlink",
    "mkfifo",
    "mknod",
    "patch",
    "tar",
    "unzip",
    "zip",
    "gzip",
    "gunzip",
    "split",
    "csplit",
)
_EXEC = _fs(
    "env",
    "xargs",
    "exec",
    "eval",
    "source",
    ".",
    "nohup",
    "timeout",
    "nice",
    "ionice",
    "time",
    "command",
    "builtin",
    "watch",
    "parallel",
    "strace",
    "ltrace",
    "gdb",
    "script",
    "setsid",
    "stdbuf",
    "flock",
    "make",
    "cmake",
    "ninja",
    "cd",
    "pushd",
    "popd",
    "trap",
    "alias",
)
_SYSTEM = _fs(
    "kill",
    "pkill",
    "killall",
    "shutdown",
    "reboot",
    "systemctl",
    "service",
    "mount",
    "umount",
    "crontab",
    "at",
    "useradd",
    "usermod",
    "passwd",
    "iptables",
    "modprobe",
    "insmod",
    "sysctl",
    "hostname",
)
_GIT_NET = _fs("push", "pull", "fetch", "clone", "ls-remote", "submodule", "remote")


def _why(name: str, args: Sequence[str | None]) -> str:
    """The human-readable reason a non-allow-listed command needs approval."""
    first = next((a for a in args if a is not None and not a.startswith("-")), None)
    flags = [a for a in args if a is not None and a.startswith("-")]
    if name in _PRIV:
        return f"`{name}` runs a command with elevated privileges"
    if name in _SHELLS:
        if any(
            f.startswith("-") and "c" in f.lstrip("-") and not f.startswith("--") for f in flags
        ):
            return f"`{name} -c` runs an inline shell script"
        return f"`{name}` runs a shell script"
    if name in _INTERP or name.startswith("python"):
        inline = {"-c", "-e", "--eval", "-p", "--print", "-E", "-r"}
        if any(f in inline for f in flags):
            used = next(f for f in flags if f in inline)
            return f"`{name} {used}` runs inline code"
        return f"`{name}` runs a program"
    if name in _SCRIPTED:
        return f"`{name}` runs a script that can write files or run commands"
    if name in _PKG:
        if first in _PKG_INSTALL or (name in ("uv", "pip", "pip3") and first == "pip"):
            return f"`{name} {first}` installs or changes packages"
        return f"`{name}` runs a package manager (may install packages or run scripts)"
    if name in _NET:
        return f"`{name}` accesses the network"
    if name in _WRITE:
        return f"`{name}` modifies files"
    if name in _EXEC:
        return f"`{name}` runs other commands or changes the shell's state"
    if name in _SYSTEM:
        return f"`{name}` changes system state"
    if name == "git":
        if first in _GIT_NET:
            return f"`git {first}` accesses the network"
        if first is None:
            return "`git` without an allow-listed subcommand"
        return f"`git {first}` is not a read-only git command"
    return f"`{name}` is not on the read-only allow-list"


def _long_match(given: str, options: frozenset[str] | Mapping[str, str]) -> str | None:
    """Exact match, or the unique-prefix abbreviation GNU getopt and git accept."""
    if given in options:
        return given
    if len(given) >= 4:
        for opt in options:
            if opt.startswith("--") and opt.startswith(given):
                return opt
    return None


def _parse(
    spec: Spec, args: Sequence[str | None], f: Findings, prog: str
) -> tuple[list[str], bool]:
    """Walk options and operands; returns (operands, pattern-given-by-option)."""
    operands: list[str] = []
    pattern_given = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg is None:
            continue
        if arg == "--":
            operands.extend(a for a in args[i:] if a is not None)
            break
        if arg.startswith("--"):
            name, eq, val = arg.partition("=")
            denied = _long_match(name, spec.deny)
            if denied is not None:
                f.risk(spec.deny[denied])
            opt = _long_match(name, spec.value)
            if opt is None:
                continue
            if not eq:
                val_arg = args[i] if i < len(args) else None
                i += 1
                if val_arg is None:
                    continue
                val = val_arg
            if opt in spec.path_opts:
                f.path(val)
            if opt in spec.pattern_opts:
                pattern_given = True
            continue
        if _is_number(arg):
            continue
        if arg.startswith("-") and len(arg) > 1:
            cluster = arg[1:]
            for j, ch in enumerate(cluster):
                opt = "-" + ch
                if opt in spec.deny:
                    f.risk(spec.deny[opt])
                if opt in spec.value:
                    val2 = cluster[j + 1 :]
                    if not val2:
                        nxt = args[i] if i < len(args) else None
                        i += 1
                        val2 = nxt or ""
                    if opt in spec.path_opts and val2:
                        f.path(val2)
                    if opt in spec.pattern_opts:
                        pattern_given = True
                    break
            continue
        operands.append(arg)
    return operands, pattern_given


def _is_number(arg: str) -> bool:
    return len(arg) > 1 and arg[0] == "-" and arg[1:].isdigit()  # ``head -5``


def _operands(spec: Spec, operands: list[str], pattern_given: bool, f: Findings, prog: str) -> None:
    kind = spec.operands
    if kind == "none":
        return
    if kind == "pattern" and not pattern_given:
        operands = operands[1:]
    elif kind == "date":
        for op in operands:
            if not op.startswith("+"):
                f.risk("`date MMDDhhmm` sets the system clock")
        return
    if spec.max_operands is not None and len(operands) > spec.max_operands:
        f.risk(spec.extra_reason)
        operands = operands[: spec.max_operands]
    for op in operands:
        f.path(op)


_FIND_DENY = {
    "-exec": "`find -exec` runs a command for each file",
    "-execdir": "`find -execdir` runs a command for each file",
    "-ok": "`find -ok` runs a command for each file",
    "-okdir": "`find -okdir` runs a command for each file",
    "-delete": "`find -delete` deletes files",
    "-fprint": "`find -fprint` writes to a file",
    "-fprint0": "`find -fprint0` writes to a file",
    "-fprintf": "`find -fprintf` writes to a file",
    "-fls": "`find -fls` writes to a file",
    "-files0-from": "`find -files0-from` " + _FILES0,
}
_FIND_VALUE = _fs(
    "-name",
    "-iname",
    "-path",
    "-ipath",
    "-wholename",
    "-iwholename",
    "-regex",
    "-iregex",
    "-regextype",
    "-type",
    "-xtype",
    "-maxdepth",
    "-mindepth",
    "-size",
    "-mtime",
    "-mmin",
    "-atime",
    "-amin",
    "-ctime",
    "-cmin",
    "-perm",
    "-user",
    "-group",
    "-uid",
    "-gid",
    "-links",
    "-inum",
    "-printf",
    "-fstype",
    "-lname",
    "-ilname",
    "-used",
    "-newer",
    "-anewer",
    "-cnewer",
    "-samefile",
    "-context",
)
_FIND_PATH = _fs("-newer", "-anewer", "-cnewer", "-samefile")


def _find(args: Sequence[str | None], f: Findings) -> None:
    i = 0
    # leading options -H -L -P -D x -Olevel, then starting points, then the expression
    while i < len(args):
        a = args[i]
        if a in ("-H", "-L", "-P"):
            i += 1
        elif a == "-D":
            i += 2
        elif a is not None and a.startswith("-O"):
            i += 1
        else:
            break
    while i < len(args):
        a = args[i]
        if a is not None and (a.startswith("-") or a in ("(", ")", "!", ",")):
            break
        if a is not None:
            f.path(a)
        i += 1
    while i < len(args):
        a = args[i]
        i += 1
        if a is None:
            continue
        if a in _FIND_DENY:
            f.risk(_FIND_DENY[a])
            if a in ("-fprint", "-fprint0", "-fls", "-fprintf") and i < len(args):
                target = args[i]
                i += 1
                if target is not None:
                    f.path(target)
        elif a.startswith("-newer") and len(a) == 8:  # -newerXY REF
            ref = args[i] if i < len(args) else None
            i += 1
            if ref is not None and a[-1] not in ("t",):
                f.path(ref)
        elif a in _FIND_VALUE:
            val = args[i] if i < len(args) else None
            i += 1
            if a in _FIND_PATH and val is not None:
                f.path(val)


def _git(args: Sequence[str | None], f: Findings) -> None:
    i = 0
    while i < len(args):
        a = args[i]
        if a is None:
            f.risk("git subcommand or option is computed at run time")
            return
        if not a.startswith("-"):
            break
        i += 1
        name, eq, val = a.partition("=")
        denied = _long_match(name, _GIT_GLOBAL_DENY) if name.startswith("--") else None
        if name in _GIT_GLOBAL_DENY or denied is not None:
            f.risk(_GIT_GLOBAL_DENY[denied or name])
            if name in ("-c", "--config-env") and not eq:
                i += 1  # skip the key=value it consumes
            continue
        if name in _GIT_GLOBAL_VALUE:
            if not eq:
                val = (args[i] or "") if i < len(args) else ""
                i += 1
            if name in _GIT_GLOBAL_PATH and val:
                f.path(val)
            continue
        if name not in _GIT_GLOBAL_FLAGS:
            f.risk(f"`git {name}` is not an allow-listed git option")
    if i >= len(args):
        return
    sub = args[i]
    rest = args[i + 1 :]
    spec = GIT.get(sub or "")
    if spec is None:
        f.risk(_why("git", [sub, *rest]))
        _maybe_paths(rest, f)
        return
    operands, _ = _parse(spec, rest, f, f"git {sub}")
    if sub == "branch":
        # Operands are patterns in list mode; otherwise they name a branch to create.
        if operands and not any(_lists_branches(a) for a in rest if a is not None):
            f.risk("`git branch NAME` creates a branch")
        return
    _operands(spec, operands, False, f, f"git {sub}")


def _lists_branches(arg: str) -> bool:
    if arg.startswith("--"):
        return _long_match(arg, _fs("--list")) is not None
    return arg.startswith("-") and "l" in arg[1:]


def _maybe_paths(args: Sequence[str | None], f: Findings) -> None:
    """For commands we don't understand: anything that looks like it names a file."""
    for a in args:
        if a is None:
            continue
        value = a.partition("=")[2] if a.startswith("-") and "=" in a else a
        if value.startswith("/") or ".." in value.split("/"):
            f.maybe(value)


_CUSTOM: dict[str, Callable[[Sequence[str | None], Findings], None]] = {
    "find": _find,
    "git": _git,
}


def classify_words(words: Sequence[str | None], f: Findings) -> None:
    """Classify one simple command given as words (``None`` = computed at run time)."""
    if not words:
        return
    name, args = words[0], words[1:]
    if name is None:
        f.risk("the command name is computed at run time")
        _maybe_paths(args, f)
        return
    if "/" in name:
        f.risk(f"runs a program by path ({name})")
        _maybe_paths(args, f)
        return
    custom = _CUSTOM.get(name)
    if custom is not None:
        custom(args, f)
        return
    spec = ALLOW.get(name)
    if spec is None:
        f.risk(_why(name, args))
        _maybe_paths(args, f)
        return
    operands, pattern_given = _parse(spec, args, f, name)
    _operands(spec, operands, pattern_given, f, name)
