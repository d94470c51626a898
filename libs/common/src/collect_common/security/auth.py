"""Authentication primitives: API keys for machines, signed tokens for people (SEC-ACCESS).

SEC-ACCESS: every API call is authenticated; roles are bank, dialer, agent, complaint, qa,
ops and auditor; least privilege. The FastAPI glue (``collect_common.web``) turns a request
into a ``Principal`` with ``ApiKeyRegistry.authenticate`` or ``TokenService.verify`` and
checks ``Principal.has_any``.

API keys (bank core, dialer)
    ``ck_<key id>_<secret>``: ``<key id>`` is 8 hex characters that name the key in logs and
    configuration, ``<secret>`` is 256 random bits (``secrets.token_urlsafe(32)``). Only
    ``hash_api_key(key)``, a SHA-256 hex digest, is configured and stored. A slow password
    hash (bcrypt, argon2) protects low-entropy secrets against guessing; a 256-bit random key
    cannot be guessed, so a fast hash loses nothing, keeps each request cheap, and lets a
    dictionary lookup by hash find the key, which also avoids comparing secrets byte by byte.

Tokens (agents, complaint handlers, QA staff, ops, auditors)
    JWT, HS256, with ``iss``, ``sub``, ``roles``, ``iat``, ``exp`` and ``jti``. Expiry is
    checked against the injected ``Clock``, so tests move time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final, Literal

import jwt

from collect_common.clock import Clock

__all__ = [
    "ApiKeyRegistry",
    "AuthenticationError",
    "Principal",
    "Role",
    "TokenService",
    "generate_api_key",
    "hash_api_key",
]


class Role(StrEnum):
    BANK = "bank"
    DIALER = "dialer"
    AGENT = "agent"
    COMPLAINT = "complaint"
    QA = "qa"
    OPS = "ops"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a machine client (``api_key``) or a person (``token``)."""

    subject: str
    roles: frozenset[Role]
    kind: Literal["api_key", "token"]

    def has_any(self, roles: Iterable[Role]) -> bool:
        return not self.roles.isdisjoint(roles)


class AuthenticationError(Exception):
    """The credentials do not identify a principal.

    ``reason`` is one of ``malformed``, ``bad-signature``, ``expired``, ``not-yet-valid``,
    ``wrong-issuer``, ``unknown-role``; answer 401 without echoing it in detail.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_roles(names: Iterable[str]) -> frozenset[Role]:
    roles: set[Role] = set()
    for name in names:
        try:
            roles.add(Role(name))
        except ValueError:
            raise ValueError(
                f"unknown role {name!r}; roles are {', '.join(r.value for r in Role)}"
            ) from None
    return frozenset(roles)


# --- API keys ----------------------------------------------------------------------------------

API_KEY_PREFIX: Final = "ck"
_MAX_KEY_LENGTH: Final = 256
_SHA256_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")


def generate_api_key() -> str:
    """A new API key ``ck_<8 hex>_<43 url-safe characters>``; show it once, store its hash."""
    return f"{API_KEY_PREFIX}_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of the whole key (see the module docstring for why not bcrypt)."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyRegistry:
    """Machine clients by the hash of their API key."""

    def __init__(self, entries: Mapping[str, tuple[str, Iterable[Role | str]]]) -> None:
        """``entries`` maps ``hash_api_key(key)`` to ``(subject, roles)``."""
        self._principals: dict[str, Principal] = {}
        for key_hash, (subject, roles) in entries.items():
            normalised = key_hash.strip().lower()
            if not _SHA256_HEX_RE.fullmatch(normalised):
                raise ValueError(f"API key of {subject!r}: the hash must be 64 hex characters")
            if not subject:
                raise ValueError("API key entry without a subject")
            if normalised in self._principals:
                raise ValueError(f"API key of {subject!r}: the same key hash appears twice")
            parsed_roles = _parse_roles(roles)
            if not parsed_roles:
                raise ValueError(f"API key of {subject!r} has no role")
            self._principals[normalised] = Principal(subject, parsed_roles, "api_key")

    @classmethod
    def parse(cls, spec: str) -> ApiKeyRegistry:
        """Parse ``"bank-core:bank:<sha256hex>;dialer:dialer|ops:<sha256hex>"``.

        Entries are ``subject:role1|role2:hash`` separated by ``;``; blank entries and
        surrounding whitespace are ignored.
        """
        entries: dict[str, tuple[str, Iterable[Role | str]]] = {}
        for position, raw in enumerate(spec.split(";")):
            item = raw.strip()
            if not item:
                continue
            parts = [p.strip() for p in item.split(":")]
            if len(parts) != 3 or not all(parts):
                raise ValueError(
                    f"API key entry {position + 1}: expected 'subject:role1|role2:sha256hex'"
                )
            subject, roles, key_hash = parts
            if key_hash.lower() in entries:
                raise ValueError(f"API key of {subject!r}: the same key hash appears twice")
            entries[key_hash.lower()] = (subject, [r.strip() for r in roles.split("|")])
        return cls(entries)

    def __len__(self) -> int:
        return len(self._principals)

    def authenticate(self, key: str) -> Principal | None:
        """The principal owning ``key``, or None for an unknown or malformed key."""
        if not key or len(key) > _MAX_KEY_LENGTH:
            return None
        # The lookup compares SHA-256 digests, never the secret itself: timing can reveal at
        # most how a digest of the caller's own input relates to a stored one, which does not
        # help to find a key (that would need a preimage).
        return self._principals.get(hash_api_key(key))


# --- tokens ------------------------------------------------------------------------------------

MIN_TOKEN_SECRET_LENGTH: Final = 32
_ALGORITHM: Final = "HS256"


class TokenService:
    """Issues and verifies the signed tokens people authenticate with."""

    def __init__(
        self,
        secret: str,
        issuer: str,
        clock: Clock,
        ttl: timedelta = timedelta(hours=8),
    ) -> None:
        if len(secret) < MIN_TOKEN_SECRET_LENGTH:
            raise ValueError(
                f"token secret is {len(secret)} characters; use at least "
                f"{MIN_TOKEN_SECRET_LENGTH} random characters"
            )
        if not issuer:
            raise ValueError("issuer must not be empty")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self._secret = secret
        self._issuer = issuer
        self._clock = clock
        self._ttl = ttl

    def issue(self, subject: str, roles: Iterable[Role]) -> str:
        if not subject:
            raise ValueError("subject must not be empty")
        role_set = _parse_roles(roles)
        if not role_set:
            raise ValueError("a token needs at least one role")
        issued_at = int(self._clock.now().timestamp())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "roles": sorted(r.value for r in role_set),
            "iat": issued_at,
            "exp": issued_at + int(self._ttl.total_seconds()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal a token names; ``AuthenticationError`` when it is not valid now."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=self._issuer,
                # Time claims are checked below against the injected clock, not the system's.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "sub", "iat", "exp", "jti", "roles"],
                },
            )
        except jwt.InvalidSignatureError:
            raise AuthenticationError("bad-signature") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("wrong-issuer") from None
        except jwt.InvalidTokenError:  # undecodable, wrong algorithm, missing claims...
            raise AuthenticationError("malformed") from None

        exp, iat, subject, role_names = (
            claims["exp"],
            claims["iat"],
            claims["sub"],
            claims["roles"],
        )
        if not _is_number(exp) or not _is_number(iat):
            raise AuthenticationError("malformed")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("malformed")
        if not isinstance(role_names, list) or not all(isinstance(r, str) for r in role_names):
            raise AuthenticationError("malformed")

        now = self._clock.now().timestamp()
        if now >= exp:
            raise AuthenticationError("expired")
        if iat > now + 1:  # one second of slack for the truncation of iat to whole seconds
            raise AuthenticationError("not-yet-valid")
        try:
            roles = _parse_roles(role_names)
        except ValueError:
            raise AuthenticationError("unknown-role") from None
        if not roles:
            raise AuthenticationError("unknown-role")
        return Principal(subject, roles, "token")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
