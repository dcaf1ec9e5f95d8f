"""A wire-faithful double of a Supabase project's auth endpoints on 127.0.0.1.

Real HTTP (``http.server`` in a thread) serving ``/auth/v1/.well-known/jwks.json``
like GoTrue does, with the private halves kept here so tests sign tokens the
way the project would. It counts requests (rate-limit tests), can rotate keys,
answer 503, or stop listening altogether and come back on the same port.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from voco.auth import public_jwk

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


@dataclass
class SigningKey:
    alg: str
    private: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @classmethod
    def new(cls, alg: str) -> SigningKey:
        if alg == "ES256":
            return cls(alg, ec.generate_private_key(ec.SECP256R1()))
        return cls(alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private.public_key(), self.kid)


class JwksDouble:
    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.status = 200
        self.body: bytes | None = None  # overrides the JWKS document when set
        self._lock = threading.Lock()
        self._requests = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    # ------------------------------------------------------------------ server
    def start(self) -> None:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with double._lock:
                    double._requests += 1
                    status, keys, body = double.status, list(double.keys), double.body
                if self.path != JWKS_PATH:
                    status, payload = 404, b'{"error":"not found"}'
                elif status != 200:
                    payload = b'{"error":"unavailable"}'
                else:
                    payload = body or json.dumps({"keys": [k.jwk() for k in keys]}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(0.02), daemon=True).start()

    def stop(self) -> None:
        """Stop listening (connection refused), keeping the port for :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """What a deployment would put in SUPABASE_URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    # -------------------------------------------------------------------- keys
    def add(self, alg: str = "ES256") -> SigningKey:
        key = SigningKey.new(alg)
        with self._lock:
            self.keys.append(key)
        return key

    def remove(self, key: SigningKey) -> None:
        with self._lock:
            self.keys.remove(key)

    # ------------------------------------------------------------------ tokens
    def claims(self, **over: Any) -> dict[str, Any]:
        """A Supabase access token's payload (None values drop the claim)."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": f"{self.url}/auth/v1",
            "sub": str(uuid.uuid4()),
            "aud": "authenticated",
            "role": "authenticated",
            "iat": now,
            "exp": now + 600,
            "email": "someone@example.com",
            "app_metadata": {"provider": "email"},
            "user_metadata": {},
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
        }
        base.update(over)
        return {k: v for k, v in base.items() if v is not None}

    def sign(self, key: SigningKey, claims: dict[str, Any] | None = None, **over: Any) -> str:
        payload = claims if claims is not None else self.claims(**over)
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})

    def close(self) -> None:
        self.stop()
