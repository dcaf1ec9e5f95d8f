"""Which file names look like secrets, so reading them needs the user's yes.

Why by name: a root is the user's project, and projects keep credentials in
well-known places (``.env``, ``id_rsa``, ``*.pem``, ``.npmrc`` …). Being inside
a root is not consent to send them to a model. The check runs on the name the
request used *and* the kernel's name of the opened file, so an in-root
symlink (``notes.txt -> .env``) does not get around it. Templates
(``.env.example``) are not secrets.
"""

from __future__ import annotations

import fnmatch
import re

_EXACT = frozenset(
    {
        ".env",
        ".npmrc",
        ".pypirc",
        ".netrc",
        "_netrc",
        ".git-credentials",
        ".pgpass",
        ".htpasswd",
        "credentials",
        "authorized_keys",
        "known_hosts",
    }
)
_GLOBS = (
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*credentials*",
    "secrets.*",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
)
_TEMPLATES = (".example", ".sample", ".template", ".dist", ".pub")
_ID_FILE = re.compile(r"^id_[a-z0-9]+$")  # id_rsa, id_ed25519: no extension
_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".password-store"})


def secret_reason(path: str) -> str | None:
    """Why ``path`` (any spelling; its components are checked) looks secret, or None."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for d in parts[:-1]:
        if d.lower() in _DIRS:
            return f"it is inside {d}/, which holds credentials"
    if not parts:
        return None
    name = parts[-1]
    low = name.lower()
    if low in _DIRS:
        return f"{name}/ holds credentials"
    if low.endswith(_TEMPLATES) and not low.endswith(".pem"):
        return None
    if low in _EXACT or _ID_FILE.match(low) or any(fnmatch.fnmatchcase(low, g) for g in _GLOBS):
        return f"{name!r} looks like a secret (keys, tokens or passwords)"
    return None


def secret_dir_reason(path: str) -> str | None:
    """Why listing folder ``path`` would reveal credentials (``.ssh/`` & co), or None.

    Only the credential folders count here: a project folder that happens to
    be called ``credentials-service`` is listed without asking (its secret
    files still ask when read).
    """
    for d in (p for p in path.split("/") if p):
        if d.lower() in _DIRS:
            return f"{d}/ holds credentials"
    return None


def first_secret(*paths: str) -> str | None:
    for p in paths:
        reason = secret_reason(p)
        if reason is not None:
            return reason
    return None
