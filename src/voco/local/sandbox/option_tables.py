"""Option tables of the read-only allow-list, and why other commands are risky.

Data, not logic: which options of each allow-listed tool take a value, which
values are files, which options write files or run programs (the deny-lists),
and which argument-taking options only ever take their argument attached
(``--abbrev=7``, ``-U3``): for those the next word is *not* a value, so it must
be read as an ordinary argument (``git log --abbrev --output=X`` writes X).
:mod:`voco.local.sandbox.commands` walks arguments with these tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spec:
    """How one allow-listed command's arguments are read.

    ``value``: options that consume the next argument; ``path_opts``: those
    whose value is a file; ``deny``: option → reason; ``operands``: what the
    non-option arguments are (``paths``, ``none`` or ``pattern`` = first is a
    pattern unless ``-e``/``-f`` gave one); ``max_operands``: more are risky
    with ``extra_reason``; ``attached``: options in ``value`` whose argument is
    optional and so only ever attached (``--abbrev=7``, ``-U3``) — without one,
    the next word is an ordinary argument, not their value; ``exact``: real
    options that are also prefixes of denied ones (``git diff --text`` is
    ``-a``, not ``--textconv``: an exact match wins over an abbreviation).
    """

    value: frozenset[str] = frozenset()
    path_opts: frozenset[str] = frozenset()
    deny: Mapping[str, str] = field(default_factory=dict)
    operands: str = "paths"
    max_operands: int | None = None
    extra_reason: str = ""
    pattern_opts: frozenset[str] = frozenset()
    attached: frozenset[str] = frozenset()
    exact: frozenset[str] = frozenset()


def fs(*items: str) -> frozenset[str]:
    return frozenset(items)


FILES0 = "reads the list of files to open from a file (names can't be checked)"

ALLOW: dict[str, Spec] = {
    "ls": Spec(
        value=fs(
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
    "tac": Spec(value=fs("-s", "--separator")),
    "nl": Spec(value=fs("-b", "-d", "-f", "-h", "-i", "-l", "-n", "-s", "-v", "-w")),
    "head": Spec(value=fs("-n", "--lines", "-c", "--bytes")),
    "tail": Spec(
        value=fs(
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
    "wc": Spec(deny={"--files0-from": FILES0}),
    "grep": Spec(
        value=fs(
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
        path_opts=fs("-f", "--file", "--exclude-from"),
        pattern_opts=fs("-e", "--regexp", "-f", "--file"),
        operands="pattern",
    ),
    "rg": Spec(
        value=fs(
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
        path_opts=fs("-f", "--file", "--ignore-file"),
        pattern_opts=fs("-e", "--regexp", "-f", "--file"),
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
    "basename": Spec(value=fs("-s", "--suffix"), operands="none"),
    "dirname": Spec(operands="none"),
    "tr": Spec(operands="none"),
    "uname": Spec(operands="none"),
    "whoami": Spec(operands="none"),
    "printenv": Spec(operands="none"),
    "which": Spec(operands="none"),
    "tree": Spec(
        value=fs(
            "-L", "-P", "-I", "--filelimit", "--timefmt", "-H", "-T", "--charset", "--sort", "-o"
        ),
        path_opts=fs("-o"),
        deny={
            "-o": "`tree -o` writes its output to a file",
            "-R": "`tree -R` writes 00Tree.html files into directories",
        },
    ),
    "stat": Spec(value=fs("-c", "--format", "--printf")),
    "file": Spec(
        value=fs(
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
        path_opts=fs("-m", "--magic-file", "-f", "--files-from"),
        deny={
            "-C": "`file -C` compiles and writes a magic file",
            "--compile": "`file --compile` compiles and writes a magic file",
        },
    ),
    "du": Spec(
        value=fs(
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
        path_opts=fs("-X", "--exclude-from"),
        deny={"--files0-from": FILES0},
    ),
    "sort": Spec(
        value=fs(
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
        path_opts=fs(
            "-T", "--temporary-directory", "--random-source", "-o", "--output", "--files0-from"
        ),
        deny={
            "-o": "`sort -o` writes its output to a file",
            "--output": "`sort --output` writes its output to a file",
            "--compress-program": "`sort --compress-program` runs a program",
            "--files0-from": FILES0,
        },
    ),
    "uniq": Spec(
        value=fs("-f", "--skip-fields", "-s", "--skip-chars", "-w", "--check-chars"),
        max_operands=1,
        extra_reason="`uniq INPUT OUTPUT` writes its output to a file",
    ),
    "cut": Spec(
        value=fs(
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
        value=fs(
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
        path_opts=fs("-X", "--exclude-from", "--from-file", "--to-file"),
        attached=fs("--unified"),  # GNU: -U NUM, but --unified[=NUM]
    ),
    "cmp": Spec(value=fs("-i", "--ignore-initial", "-n", "--bytes")),
    "comm": Spec(value=fs("--output-delimiter")),
    "paste": Spec(value=fs("-d", "--delimiters")),
    "fold": Spec(value=fs("-w", "--width")),
    "expand": Spec(value=fs("-t", "--tabs")),
    "rev": Spec(),
    "strings": Spec(value=fs("-n", "--bytes", "-t", "--radix", "-e", "--encoding")),
    "od": Spec(
        value=fs(
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
        ),
        attached=fs("-w", "--width"),  # GNU od: -w[BYTES], --width[=BYTES]
    ),
    "md5sum": Spec(),
    "sha1sum": Spec(),
    "sha256sum": Spec(),
    "sha512sum": Spec(),
    "realpath": Spec(
        value=fs("--relative-to", "--relative-base"),
        path_opts=fs("--relative-to", "--relative-base"),
    ),
    "readlink": Spec(),
    "date": Spec(
        value=fs("-d", "--date", "-f", "--file", "-r", "--reference"),
        path_opts=fs("-f", "--file", "-r", "--reference"),
        deny={
            "-s": "`date -s` sets the system clock",
            "--set": "`date --set` sets the system clock",
        },
        operands="date",
    ),
}

# ------------------------------------------------------------------ git

GIT_GLOBAL_VALUE = fs("-C", "--git-dir", "--work-tree", "--namespace")
GIT_GLOBAL_PATH = fs("-C", "--git-dir", "--work-tree")
GIT_GLOBAL_DENY = {
    "-c": "`git -c` overrides git configuration (can run arbitrary programs)",
    "--config-env": "`git --config-env` overrides git configuration",
    "--exec-path": "`git --exec-path` changes where git finds its programs",
    "-p": "`git -p` starts a pager program",
    "--paginate": "`git --paginate` starts a pager program",
}
GIT_GLOBAL_FLAGS = fs(
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
_GIT_HISTORY_VALUE = fs(
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
_GIT_HISTORY_PATH = fs("-O", "--output")
_GIT_HISTORY_DENY = {
    "--output": "`git --output` writes to a file",
    "--ext-diff": "`--ext-diff` runs an external diff program",
    "--textconv": "`--textconv` runs text-conversion filter programs",
}
# git takes these only as --opt=VALUE / -UVALUE (checked against git 2.39):
# ``git log --abbrev --output=x`` is --abbrev plus a write to x.
_GIT_HISTORY_ATTACHED = fs("--abbrev", "--pretty", "--format", "-U", "--unified")
_GIT_HISTORY = Spec(
    value=_GIT_HISTORY_VALUE | fs("--pretty"),
    deny=_GIT_HISTORY_DENY,
    path_opts=_GIT_HISTORY_PATH,
    attached=_GIT_HISTORY_ATTACHED,
    exact=fs("--text"),
)
GIT: dict[str, Spec] = {
    "status": Spec(
        value=fs("-u", "--untracked-files", "--ignore-submodules", "--column"),
        attached=fs("-u", "--untracked-files", "--ignore-submodules", "--column"),  # all optional
    ),
    "log": _GIT_HISTORY,
    "show": _GIT_HISTORY,
    "diff": _GIT_HISTORY,
    "blame": Spec(
        value=fs("-L", "-S", "--contents", "--date", "--abbrev"),
        path_opts=fs("-S", "--contents"),
        attached=fs("--abbrev"),
    ),
    "rev-parse": Spec(),
    "ls-files": Spec(
        value=fs("-x", "--exclude", "-X", "--exclude-from", "--format"),
        path_opts=fs("-X", "--exclude-from"),
    ),
    "branch": Spec(
        value=fs(
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

_PRIV = fs("sudo", "su", "doas", "pkexec", "chroot", "nsenter", "unshare", "setpriv", "capsh")
_SHELLS = fs("bash", "sh", "zsh", "dash", "ksh", "fish", "csh", "tcsh", "busybox")
_INTERP = fs(
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
_SCRIPTED = fs(
    "awk", "gawk", "mawk", "nawk", "sed", "jq", "vim", "vi", "nvim", "emacs", "less", "more", "man"
)
_PKG = fs(
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
_PKG_INSTALL = fs(
    "install", "i", "add", "get", "update", "upgrade", "sync", "ci", "remove", "uninstall"
)
_NET = fs(
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
_WRITE = fs(
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
_EXEC = fs(
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
_SYSTEM = fs(
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
GIT_NET = fs("push", "pull", "fetch", "clone", "ls-remote", "submodule", "remote")


FIND_DENY = {
    "-exec": "`find -exec` runs a command for each file",
    "-execdir": "`find -execdir` runs a command for each file",
    "-ok": "`find -ok` runs a command for each file",
    "-okdir": "`find -okdir` runs a command for each file",
    "-delete": "`find -delete` deletes files",
    "-fprint": "`find -fprint` writes to a file",
    "-fprint0": "`find -fprint0` writes to a file",
    "-fprintf": "`find -fprintf` writes to a file",
    "-fls": "`find -fls` writes to a file",
    "-files0-from": "`find -files0-from` " + FILES0,
}
FIND_VALUE = fs(
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
FIND_PATH = fs("-newer", "-anewer", "-cnewer", "-samefile")


def why(name: str, args: Sequence[str | None]) -> str:
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
        if first in GIT_NET:
            return f"`git {first}` accesses the network"
        if first is None:
            return "`git` without an allow-listed subcommand"
        return f"`git {first}` is not a read-only git command"
    return f"`{name}` is not on the read-only allow-list"
