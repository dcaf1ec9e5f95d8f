"""Token verification cost per session start, with the JWKS already cached.

Usage: ``uv run python bench/bench_auth.py [--n 2000]``.
Prints p50/p95 in microseconds of ``await verifier.verify(token)`` (size check,
header, key lookup, signature, claim rules) for ES256 and RS256 tokens from a
Supabase-style JWKS (served over real HTTP on 127.0.0.1, fetched once), the
legacy HS256 secret, and the embedded ES256 issuer. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from voco.auth import TokenAuthority, Verifier, public_jwk, supabase_verifier

SECRET = "bench-legacy-secret-" + "x" * 32


def _serve_jwks(doc: dict[str, Any]) -> ThreadingHTTPServer:
    body = json.dumps(doc).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _claims(iss: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": iss,
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "email": "bench@example.com",
        "app_metadata": {"provider": "email", "org_id": "org-bench"},
        "user_metadata": {},
    }


async def _time(v: Verifier, tokens: list[str], n: int) -> list[float]:
    for t in tokens[:5]:
        await v.verify(t)  # warm-up (and, for JWKS, the one fetch)
    out: list[float] = []
    for i in range(n):
        tok = tokens[i % len(tokens)]
        t0 = time.perf_counter()
        await v.verify(tok)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def _pct(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[94]


async def main(n: int) -> None:
    es = ec.generate_private_key(ec.SECP256R1())
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {"keys": [public_jwk(es.public_key(), "es"), public_jwk(rs.public_key(), "rs")]}
    server = _serve_jwks(jwks)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    iss = url + "/auth/v1"
    supa = supabase_verifier(url, SECRET)
    rows: list[tuple[str, float, float]] = []
    try:
        cold = _claims(iss)
        t0 = time.perf_counter()
        await supa.verify(jwt.encode(cold, es, algorithm="ES256", headers={"kid": "es"}))
        cold_us = (time.perf_counter() - t0) * 1e6
        pool = 50
        cases = {
            "ES256 (Supabase JWKS, cached)": [
                jwt.encode(_claims(iss), es, algorithm="ES256", headers={"kid": "es"})
                for _ in range(pool)
            ],
            "RS256 (Supabase JWKS, cached)": [
                jwt.encode(_claims(iss), rs, algorithm="RS256", headers={"kid": "rs"})
                for _ in range(pool)
            ],
            "HS256 (legacy secret)": [
                jwt.encode(_claims(iss), SECRET, algorithm="HS256") for _ in range(pool)
            ],
        }
        for name, tokens in cases.items():
            rows.append((name, *_pct(await _time(supa, tokens, n))))
        with tempfile.TemporaryDirectory() as home:
            local = TokenAuthority(Path(home) / "key.pem")
            tokens = [local.issue(f"user-{i}", org_id="o") for i in range(pool)]
            rows.append(("ES256 (embedded issuer)", *_pct(await _time(local, tokens, n))))
    finally:
        await supa.aclose()
        server.shutdown()
    print(f"first verify incl. JWKS fetch over 127.0.0.1: {cold_us:.0f} µs")
    print(f"{'verify()':34} {'n':>6} {'p50 µs':>9} {'p95 µs':>9}")
    for name, p50, p95 in rows:
        print(f"{name:34} {n:6d} {p50:9.1f} {p95:9.1f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    asyncio.run(main(ap.parse_args().n))
