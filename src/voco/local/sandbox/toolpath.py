"""Which of the user's own tool folders the sandbox may see, and its PATH.

Why: people install their test runners and compilers under ``$HOME`` (pyenv,
uv, a project ``.venv``, nvm, cargo, ``pip --user``). With only ``/usr``
visible, "run the tests" fails with 127. But ``$HOME`` also holds ``~/.ssh``,
cloud credentials and Voco's own secrets, so it is never bound whole: only the
directories resolved from the user's PATH (or ``VOCO_TOOL_PATH``), plus what
those tools need to start — a pyenv root, a virtualenv's base interpreter,
the install prefix of a ``bin`` folder that is a tool installation, the
targets of symlinks in a tool folder — each bound read-only at its real path.

Nothing is ever bound that is ``/``, ``$HOME`` or an ancestor of it, or that
contains, or lies inside, a secret location (``~/.ssh``, ``~/.aws``,
``~/.config``, ``~/.gnupg``, …) or Voco's state (``$VOCO_HOME``, the audit
log's folder). Pure apart from reading the file system; resolved once per
:class:`~voco.local.sandbox.core.Sandbox`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

BASE_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
SYSTEM_PREFIXES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_NEVER = ("/proc", "/sys", "/dev", "/run", "/etc", "/boot", "/var/run")

# Relative to $HOME: never bound, nor anything containing or inside them.
HOME_SECRETS = (
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".config",
    ".docker",
    ".kube",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".gitconfig",
    ".password-store",
    ".pki",
    ".mozilla",
    ".voco",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".cargo/config",
    ".cargo/config.toml",
    ".cargo/registry",
    ".local/state",
    ".local/share/keyrings",
    ".bash_history",
    ".zsh_history",
)
PROJECT_ENVS = (".venv/bin", "venv/bin", "node_modules/.bin")
_SYMLINK_SCAN = 2000  # entries looked at per tool folder
_MAX_MOUNTS = 64


@dataclass(frozen=True)
class ToolEnv:
    """Read-only binds (host path = sandbox path), the PATH, extra env."""

    mounts: tuple[str, ...] = ()
    path: str = ":".join(BASE_PATH)
    env: Mapping[str, str] = field(default_factory=dict)


def forbidden_paths(home: str, state: Iterable[str] = ()) -> list[str]:
    """Real paths that must never be visible: the home secrets and Voco state."""
    out = [os.path.join(home, s) for s in HOME_SECRETS]
    out += [s for s in state if s]
    return [os.path.realpath(p) for p in out]


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _is_system(path: str) -> bool:
    return any(_within(path, p) for p in SYSTEM_PREFIXES)


class _Resolver:
    def __init__(self, roots: Sequence[str], home: str, forbidden: Sequence[str]) -> None:
        self.roots = [os.path.realpath(r) for r in roots]
        self.home = os.path.realpath(home) if home else ""
        self.forbidden = list(forbidden)
        self.mounts: list[str] = []
        self.env: dict[str, str] = {}

    def allowed(self, real: str) -> bool:
        """May ``real`` (a resolved directory) be bound read-only?"""
        if not os.path.isabs(real) or real == "/" or any(_within(real, n) for n in _NEVER):
            return False
        if self.home and (real == self.home or _within(self.home, real)):
            return False  # $HOME itself or an ancestor of it (incl. /)
        return not any(_within(real, f) or _within(f, real) for f in self.forbidden)

    def visible(self, real: str) -> bool:
        return (
            _is_system(real)
            or any(_within(real, r) for r in self.roots)
            or any(_within(real, m) for m in self.mounts)
        )

    def mount(self, real: str) -> bool:
        if self.visible(real):
            return True
        if len(self.mounts) >= _MAX_MOUNTS or not os.path.isdir(real) or not self.allowed(real):
            return False
        self.mounts = [m for m in self.mounts if not _within(m, real)] + [real]
        return True

    def venv_base(self, venv: str) -> None:
        """A virtualenv's interpreter lives where ``pyvenv.cfg``'s ``home`` says."""
        try:
            with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as f:
                lines = f.read(65536).splitlines()
        except (OSError, UnicodeDecodeError):
            return
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                bindir = os.path.realpath(value.strip())
                self.prefix_or_dir(bindir)

    def prefix_or_dir(self, bindir: str) -> None:
        """Bind a ``bin`` folder's install prefix when it is one, else the folder."""
        parent = os.path.dirname(bindir)
        is_install = os.path.basename(bindir) in ("bin", "shims") and any(
            os.path.exists(os.path.join(parent, x)) for x in ("lib", "libexec", "pyvenv.cfg")
        )
        if is_install and self.mount(parent):
            return
        self.mount(bindir)
        lib = os.path.join(parent, "lib")  # pip --user: ~/.local/bin needs ~/.local/lib
        if os.path.basename(bindir) == "bin" and os.path.isdir(lib):
            self.mount(lib)

    def tool_dir(self, real: str) -> bool:
        parent = os.path.dirname(real)
        if os.path.basename(real) == "shims" and os.path.exists(
            os.path.join(parent, "libexec", "pyenv")
        ):
            if self.mount(parent):
                self.env["PYENV_ROOT"] = parent
                self.venvs_under(os.path.join(parent, "versions"))
        else:
            self.prefix_or_dir(real)
        if not self.visible(real):
            return False
        if os.path.exists(os.path.join(real, "pyvenv.cfg")) or os.path.exists(
            os.path.join(parent, "pyvenv.cfg")
        ):
            self.venv_base(parent)
        if os.path.exists(os.path.join(real, "rustup")) and self.home:
            rustup = os.path.realpath(
                os.environ.get("RUSTUP_HOME") or os.path.join(self.home, ".rustup")
            )
            if self.mount(rustup):
                self.env["RUSTUP_HOME"] = rustup
        self.symlink_targets(real)
        return True

    def venvs_under(self, versions: str) -> None:
        try:
            names = sorted(os.listdir(versions))[:_SYMLINK_SCAN]
        except OSError:
            return
        for name in names:
            self.venv_base(os.path.join(versions, name))

    def symlink_targets(self, real: str) -> None:
        """``~/.local/bin/ruff`` → ``~/.local/share/uv/tools/ruff/bin/ruff``: bind the
        target's virtualenv (and its base interpreter) or install prefix."""
        try:
            with os.scandir(real) as it:
                entries = [e for _, e in zip(range(_SYMLINK_SCAN), it, strict=False)]
        except OSError:
            return
        for e in entries:
            if not e.is_symlink():
                continue
            target = os.path.realpath(e.path)
            bindir = os.path.dirname(target)
            if self.visible(target) or not os.path.isdir(bindir):
                continue
            venv = next(
                (d for d in _ancestors(bindir, 4) if os.path.exists(os.path.join(d, "pyvenv.cfg"))),
                None,
            )
            if venv is not None:
                if self.mount(venv):
                    self.venv_base(venv)
            else:
                self.prefix_or_dir(bindir)


def _ancestors(path: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        out.append(path)
        path = os.path.dirname(path)
    return out


def resolve_tools(
    roots: Sequence[str],
    *,
    path_env: str | None,
    home: str,
    state: Iterable[str] = (),
) -> ToolEnv:
    """Binds and PATH for the sandbox, from the user's PATH (or VOCO_TOOL_PATH).

    Project environments of every root come first on PATH, then the user's
    PATH entries in their order (those visible inside), then the base system
    folders.
    """
    r = _Resolver(roots, home, forbidden_paths(home, state) if home else list(state))
    path: list[str] = []
    for root in r.roots:
        for env_dir in PROJECT_ENVS:
            d = os.path.join(root, env_dir)
            if os.path.isdir(d) and _within(os.path.realpath(d), root):
                path.append(os.path.realpath(d))
                if env_dir.endswith("/bin") and not env_dir.startswith("node_modules"):
                    r.venv_base(os.path.dirname(os.path.realpath(d)))
    for entry in (path_env or "").split(":"):
        if not os.path.isabs(entry) or not os.path.isdir(entry):
            continue  # "", ".", relative entries would mean "whatever the cwd is"
        real = os.path.realpath(entry)
        if _is_system(real) or r.tool_dir(real):
            path.append(real)
    path += BASE_PATH
    seen: dict[str, None] = {}
    for p in path:
        seen.setdefault(p, None)
    return ToolEnv(tuple(sorted(r.mounts)), ":".join(seen), dict(r.env))


def tools_from_environment(roots: Sequence[str], state: Iterable[str] = ()) -> ToolEnv:
    """``VOCO_TOOL_PATH`` (colon list; empty = none) if set, else ``PATH``."""
    configured = os.environ.get("VOCO_TOOL_PATH")
    path_env = configured if configured is not None else os.environ.get("PATH", "")
    return resolve_tools(roots, path_env=path_env, home=os.path.expanduser("~"), state=state)
