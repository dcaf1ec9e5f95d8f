"""A Supabase project's signing keys, fetched from its JWKS and cached.

:class:`JwksCache` is the sans-I/O core (clock passed in): it decides whether a
``kid`` is served from cache, needs a fetch, or is refused. Its rules:

- keys are fresh for ``ttl_s``; a fresh hit never touches the network;
- an unknown ``kid`` (key rotation) or a stale set triggers a fetch, but at most
  one attempt per ``min_refresh_s`` — failed attempts count — so a flood of
  bogus kids, or an endpoint that is down, costs the endpoint one request per
  interval, not one per token;
- if the endpoint is down, a known key keeps working up to ``max_stale_s`` after
  the last good fetch; beyond that, and for any key never seen, verification
  fails closed with the fetch error, and recovers on the first good fetch.

:class:`JwksKeySource` is the thin asyncio adapter over ``httpx.AsyncClient``
(the client is the seam: tests and other transports plug in there).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from voco.auth.claims import AuthError
from voco.auth.keys import KeySource, VerifyKey, parse_jwks

MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Hit:
    key: VerifyKey


@dataclass(frozen=True)
class Fetch:
    pass


@dataclass(frozen=True)
class Refuse:
    reason: str


Decision = Hit | Fetch | Refuse


class JwksCache:
    def __init__(
        self, *, ttl_s: float = 600.0, min_refresh_s: float = 30.0, max_stale_s: float = 3600.0
    ) -> None:
        self.ttl_s, self.min_refresh_s, self.max_stale_s = ttl_s, min_refresh_s, max_stale_s
        self.keys: dict[str, VerifyKey] = {}
        self.fetched_at: float | None = None  # last good fetch
        self.attempted_at: float | None = None  # last attempt, good or not
        self.last_error: str | None = None

    def _can_fetch(self, now: float) -> bool:
        return self.attempted_at is None or now - self.attempted_at >= self.min_refresh_s

    def decide(self, kid: str, now: float) -> Decision:
        age = None if self.fetched_at is None else now - self.fetched_at
        key = self.keys.get(kid)
        if key is not None and age is not None and age < self.ttl_s:
            return Hit(key)
        if self._can_fetch(now):
            return Fetch()
        if key is not None and age is not None and age < self.max_stale_s:
            return Hit(key)  # endpoint trouble: known keys ride it out for a while
        if self.last_error is not None:
            return Refuse(f"signing keys unavailable: {self.last_error}")
        return Refuse("access token signed with an unknown key (kid not in the project's JWKS)")

    def begin_fetch(self, now: float) -> None:
        self.attempted_at = now

    def fetched(self, keys: dict[str, VerifyKey], now: float) -> None:
        self.keys, self.fetched_at, self.last_error = keys, now, None

    def failed(self, error: str, now: float) -> None:
        self.last_error = error


class JwksKeySource(KeySource):
    """Keys of ``$SUPABASE_URL/auth/v1/.well-known/jwks.json``, cached by :class:`JwksCache`."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        cache: JwksCache | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.cache = cache or JwksCache()
        self._client = client
        self._owns_client = client is None
        self._monotonic = monotonic
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str) -> VerifyKey:
        decision = self.cache.decide(kid, self._monotonic())
        if not isinstance(decision, Hit):
            # One fetch in flight; everyone else without a hit waits for it and
            # re-decides, so a kid that the running fetch brings in is not refused.
            async with self._lock:
                decision = self.cache.decide(kid, self._monotonic())
                if isinstance(decision, Fetch):
                    self.cache.begin_fetch(self._monotonic())
                    try:
                        keys = await self._fetch()
                    except _FetchError as exc:
                        self.cache.failed(str(exc), self._monotonic())
                    else:
                        self.cache.fetched(keys, self._monotonic())
                    decision = self.cache.decide(kid, self._monotonic())
        if isinstance(decision, Hit):
            return decision.key
        if isinstance(decision, Refuse):
            raise AuthError(decision.reason)
        raise AuthError("signing keys unavailable: refresh is rate-limited")  # pragma: no cover

    async def warmup(self) -> str | None:
        """Fetch the set at start-up (through the cache's rules), so the first
        session does not pay for it and a wrong SUPABASE_URL shows in the log."""
        async with self._lock:
            if not isinstance(self.cache.decide("", self._monotonic()), Fetch):
                return self.cache.last_error
            self.cache.begin_fetch(self._monotonic())
            try:
                keys = await self._fetch()
            except _FetchError as exc:
                self.cache.failed(str(exc), self._monotonic())
                return str(exc)
            self.cache.fetched(keys, self._monotonic())
            return None  # an empty set is fine for a project on the legacy secret only

    async def _fetch(self) -> dict[str, VerifyKey]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False)
        try:
            async with self._client.stream(
                "GET", self.url, headers={"accept": "application/json"}
            ) as resp:
                if resp.status_code != 200:
                    raise _FetchError(f"JWKS endpoint {self.url} answered HTTP {resp.status_code}")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _FetchError(f"JWKS at {self.url} is larger than {MAX_JWKS_BYTES} B")
        except httpx.HTTPError as exc:
            raise _FetchError(
                f"JWKS endpoint {self.url} unreachable ({type(exc).__name__})"
            ) from exc
        try:
            return parse_jwks(json.loads(body))
        except ValueError as exc:  # JSONDecodeError is a ValueError
            raise _FetchError(f"JWKS at {self.url} is malformed: {exc}") from exc

    def weaknesses(self) -> list[str]:
        parts = urlsplit(self.url)
        if parts.scheme != "https" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            return [f"JWKS is fetched over plain HTTP from {parts.hostname}: keys can be forged"]
        return []

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None


class _FetchError(Exception):
    pass
