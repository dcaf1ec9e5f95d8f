"""Who may talk to the local runtime's HTTP/WebSocket server (sans-I/O).

Any web page the user visits can send requests to 127.0.0.1. Three checks keep
them out: a per-launch secret only the printed link carries (like a notebook
server), an exact ``Origin`` match for the WebSocket (a foreign page's origin
is its own), and an exact ``Host`` match (DNS rebinding makes a foreign name
resolve to 127.0.0.1; the Host header still carries that name).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Gate:
    port: int
    secret: str

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(f"http://{h}" for h in self.hosts)

    def check_host(self, host: str | None) -> str | None:
        """None if fine, else why not."""
        if host is None or host.lower() not in self.hosts:
            return f"unexpected Host {host!r}"
        return None

    def check_secret(self, given: str | None) -> str | None:
        if not given or not hmac.compare_digest(given.encode(), self.secret.encode()):
            return "missing or wrong launch secret"
        return None

    def check_page(self, host: str | None, origin: str | None) -> str | None:
        """Is this our own page (right Host and Origin), whatever its secret?"""
        if problem := self.check_host(host):
            return problem
        if origin is None or origin.lower() not in self.origins:
            return f"unexpected Origin {origin!r}"
        return None

    def check_websocket(
        self, host: str | None, origin: str | None, secret: str | None
    ) -> str | None:
        return self.check_page(host, origin) or self.check_secret(secret)

    def csp(self) -> str:
        ws = " ".join(f"ws://{h}" for h in sorted(self.hosts))
        return (
            "default-src 'self'; "
            f"connect-src 'self' {ws}; "
            "media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
            "worker-src 'self' blob:; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )
