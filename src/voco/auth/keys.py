"""Verification keys: where they come from (:class:`KeySource`) and what they allow.

The algorithm a token is checked with comes from the *key's type* (EC P-256 →
ES256, RSA → RS256), never from the token header alone: the header only has to
agree. So an attacker cannot pick ``none`` or make an HMAC check run against a
public key (algorithm confusion). Symmetric (``oct``) keys are refused in a
JWKS: a public key set that carries a shared secret is a misconfiguration.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from voco.auth.claims import AuthError

log = logging.getLogger("voco.auth")

ASYMMETRIC_ALGS = frozenset({"ES256", "RS256"})
MIN_RSA_BITS = 2048
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class VerifyKey:
    kid: str
    alg: str  # derived from the key type, see module docstring
    key: PublicKey


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64u_int(text: str) -> int:
    pad = "=" * (-len(text) % 4)
    return int.from_bytes(base64.urlsafe_b64decode(text + pad), "big")


def public_jwk(key: PublicKey, kid: str | None = None) -> dict[str, str]:
    """The RFC 7517 public JWK of ``key`` (kid defaults to its RFC 7638 thumbprint)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        nums = key.public_numbers()
        size = (key.curve.key_size + 7) // 8
        core = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64u(nums.x.to_bytes(size, "big")),
            "y": _b64u(nums.y.to_bytes(size, "big")),
        }
        alg = "ES256"
    else:
        rn = key.public_numbers()
        core = {
            "e": _b64u(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big")),
            "kty": "RSA",
            "n": _b64u(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")),
        }
        alg = "RS256"
    thumb = _b64u(hashlib.sha256(json.dumps(core, separators=(",", ":")).encode()).digest())
    return {**core, "kid": kid or thumb, "alg": alg, "use": "sig"}


def parse_jwk(jwk: Any) -> VerifyKey:
    """One JWKS entry → a :class:`VerifyKey`; ``ValueError`` says why it is unusable."""
    if not isinstance(jwk, dict):
        raise ValueError("entry is not an object")
    kid, kty = jwk.get("kid"), jwk.get("kty")
    if not isinstance(kid, str) or not kid:
        raise ValueError("no 'kid'")
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"key {kid!r} is not for signatures")
    try:
        if kty == "EC":
            if jwk.get("crv") != "P-256":
                raise ValueError(f"key {kid!r}: only P-256 EC keys are accepted")
            pub: PublicKey = ec.EllipticCurvePublicNumbers(
                _b64u_int(jwk["x"]), _b64u_int(jwk["y"]), ec.SECP256R1()
            ).public_key()
            alg = "ES256"
        elif kty == "RSA":
            pub = rsa.RSAPublicNumbers(_b64u_int(jwk["e"]), _b64u_int(jwk["n"])).public_key()
            if pub.key_size < MIN_RSA_BITS:
                raise ValueError(f"key {kid!r}: RSA key of {pub.key_size} bits is too small")
            alg = "RS256"
        else:
            raise ValueError(f"key {kid!r}: key type {str(kty)[:10]!r} is not accepted")
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"key {kid!r} is malformed") from exc
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise ValueError(f"key {kid!r}: declared alg {declared!r} does not fit a {kty} key")
    return VerifyKey(kid, alg, pub)


def parse_jwks(doc: Any) -> dict[str, VerifyKey]:
    """A JWKS document → usable keys by kid (unusable entries are skipped and logged)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("JWKS document has no 'keys' list")
    keys: dict[str, VerifyKey] = {}
    for entry in doc["keys"]:
        try:
            k = parse_jwk(entry)
        except ValueError as exc:
            log.warning("JWKS: skipping a key: %s", exc)
            continue
        keys[k.kid] = k
    return keys


class KeySource(ABC):
    """Where the verifier gets public keys by ``kid`` (JWKS over HTTP, or a local file)."""

    @abstractmethod
    async def key_for(self, kid: str) -> VerifyKey:
        """The key named ``kid``, or :class:`AuthError` saying why there is none."""

    def weaknesses(self) -> list[str]:
        return []

    async def warmup(self) -> str | None:
        """Load keys ahead of the first session; a problem is returned, not raised,
        because a source that is down now may be back by the first token."""
        return None

    def public_jwks(self) -> dict[str, Any] | None:
        """The JWKS this process should publish, if it is the issuer (local mode)."""
        return None

    async def aclose(self) -> None:
        return None


def load_or_create_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The ES256 private key at ``path``, created on first use (0600, atomically).

    Written to a private temp file and ``link``-ed into place: the link fails if
    another process got there first, so two first starts never clobber each other
    and nobody ever reads a half-written key.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        data = path.read_bytes()
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuthError(f"{path} is not a readable PEM private key: {exc}") from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
        raise AuthError(f"{path} is not an ES256 (P-256) private key")
    return loaded


class LocalKeySource(KeySource):
    """The embedded issuer's own key: verified directly, published as a JWKS."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.private_key = load_or_create_signing_key(path)
        self.jwk = public_jwk(self.private_key.public_key())
        self.kid = self.jwk["kid"]
        self._key = VerifyKey(self.kid, "ES256", self.private_key.public_key())

    async def key_for(self, kid: str) -> VerifyKey:
        if kid != self.kid:
            raise AuthError("access token signed with an unknown key (kid) for this engine")
        return self._key

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self.jwk)]}

    def weaknesses(self) -> list[str]:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except OSError as exc:
            return [f"local signing key {self.path} cannot be checked: {exc}"]
        if mode & 0o077:
            return [f"local signing key {self.path} is mode {mode:o}, not 600"]
        return []
