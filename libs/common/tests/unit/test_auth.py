"""API keys and tokens (SEC-ACCESS)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from collect_common.clock import FrozenClock
from collect_common.security.auth import (
    ApiKeyRegistry,
    AuthenticationError,
    Principal,
    Role,
    TokenService,
    generate_api_key,
    hash_api_key,
)

SECRET = "0123456789abcdef0123456789abcdef"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def tokens(clock: FrozenClock) -> TokenService:
    return TokenService(SECRET, "collect-platform", clock)


def reason(tokens: TokenService, token: str) -> str:
    with pytest.raises(AuthenticationError) as info:
        tokens.verify(token)
    return info.value.reason


class TestRoleAndPrincipal:
    def test_roles(self) -> None:
        assert {r.value for r in Role} == {
            "bank",
            "dialer",
            "agent",
            "complaint",
            "qa",
            "ops",
            "auditor",
        }
        assert Role("qa") is Role.QA
        assert str(Role.QA) == "qa"
        assert f"{Role.QA}" == "qa"

    def test_has_any(self) -> None:
        principal = Principal("agent-7", frozenset({Role.AGENT, Role.QA}), "token")
        assert principal.has_any([Role.QA, Role.OPS])
        assert principal.has_any({Role.AGENT})
        assert not principal.has_any([Role.BANK, Role.AUDITOR])
        assert not principal.has_any([])

    def test_is_frozen(self) -> None:
        principal = Principal("x", frozenset({Role.OPS}), "api_key")
        with pytest.raises(AttributeError):
            principal.subject = "y"  # type: ignore[misc]


class TestApiKeys:
    def test_generated_keys_look_right_and_differ(self) -> None:
        key = generate_api_key()
        prefix, key_id, secret = key.split("_", 2)
        assert prefix == "ck"
        assert len(key_id) == 8
        int(key_id, 16)
        assert len(secret) >= 43  # 256 bits in url-safe base64
        assert generate_api_key() != key

    def test_hash_is_sha256_hex(self) -> None:
        key = generate_api_key()
        assert hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()

    def test_parse_and_authenticate(self) -> None:
        bank_key, dialer_key = generate_api_key(), generate_api_key()
        registry = ApiKeyRegistry.parse(
            f"bank-core:bank:{hash_api_key(bank_key)}; "
            f"dialer:dialer|ops:{hash_api_key(dialer_key).upper()};"
        )
        assert len(registry) == 2
        assert registry.authenticate(bank_key) == Principal(
            "bank-core", frozenset({Role.BANK}), "api_key"
        )
        dialer = registry.authenticate(dialer_key)
        assert dialer is not None
        assert dialer.subject == "dialer"
        assert dialer.roles == {Role.DIALER, Role.OPS}
        assert dialer.kind == "api_key"

    def test_unknown_or_malformed_keys(self) -> None:
        key = generate_api_key()
        registry = ApiKeyRegistry({hash_api_key(key): ("bank-core", [Role.BANK])})
        assert registry.authenticate(generate_api_key()) is None
        assert registry.authenticate(key[:-1]) is None
        assert registry.authenticate(hash_api_key(key)) is None  # the hash is not the key
        assert registry.authenticate("") is None
        assert registry.authenticate("x" * 10_000) is None
        assert registry.authenticate(key) is not None

    def test_empty_configuration(self) -> None:
        registry = ApiKeyRegistry.parse("")
        assert len(registry) == 0
        assert registry.authenticate(generate_api_key()) is None

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("bank-core:bank", "expected 'subject:role1|role2:sha256hex'"),
            ("bank-core::" + "a" * 64, "expected"),
            ("bank-core:banker:" + "a" * 64, "unknown role 'banker'"),
            ("bank-core:bank:abc", "64 hex characters"),
            ("a:bank:" + "a" * 64 + ";b:ops:" + "A" * 64, "appears twice"),
        ],
    )
    def test_bad_configuration(self, spec: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            ApiKeyRegistry.parse(spec)

    def test_mapping_needs_roles(self) -> None:
        with pytest.raises(ValueError, match="no role"):
            ApiKeyRegistry({"a" * 64: ("bank-core", [])})


class TestTokens:
    def test_roundtrip(self, tokens: TokenService) -> None:
        token = tokens.issue("agent-7", [Role.AGENT, Role.QA])
        assert tokens.verify(token) == Principal(
            "agent-7", frozenset({Role.AGENT, Role.QA}), "token"
        )

    def test_claims(self, tokens: TokenService) -> None:
        token = tokens.issue("agent-7", [Role.AGENT])
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
        assert claims["iss"] == "collect-platform"
        assert claims["sub"] == "agent-7"
        assert claims["roles"] == ["agent"]
        assert claims["iat"] == int(START.timestamp())
        assert claims["exp"] == int((START + timedelta(hours=8)).timestamp())
        assert len(claims["jti"]) == 32
        assert jwt.get_unverified_header(token)["alg"] == "HS256"

    def test_each_token_has_its_own_jti(self, tokens: TokenService) -> None:
        first = jwt.decode(tokens.issue("a", [Role.OPS]), options={"verify_signature": False})
        second = jwt.decode(tokens.issue("a", [Role.OPS]), options={"verify_signature": False})
        assert first["jti"] != second["jti"]

    def test_expiry_follows_the_injected_clock(
        self, tokens: TokenService, clock: FrozenClock
    ) -> None:
        token = tokens.issue("agent-7", [Role.AGENT])
        clock.advance(timedelta(hours=8) - timedelta(seconds=1))
        assert tokens.verify(token).subject == "agent-7"
        clock.advance(timedelta(seconds=1))
        assert reason(tokens, token) == "expired"

    def test_custom_ttl(self, clock: FrozenClock) -> None:
        short = TokenService(SECRET, "collect-platform", clock, ttl=timedelta(minutes=15))
        token = short.issue("qa-1", [Role.QA])
        clock.advance(timedelta(minutes=15))
        assert reason(short, token) == "expired"

    def test_token_from_the_future(self, clock: FrozenClock) -> None:
        later = TokenService(SECRET, "collect-platform", FrozenClock(START + timedelta(hours=1)))
        now = TokenService(SECRET, "collect-platform", clock)
        assert reason(now, later.issue("a", [Role.OPS])) == "not-yet-valid"

    def test_tampered_payload(self, tokens: TokenService) -> None:
        token = tokens.issue("agent-7", [Role.AGENT])
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["roles"] = ["ops"]
        forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        assert reason(tokens, f"{header}.{forged_payload}.{signature}") == "bad-signature"

    def test_other_secret(self, tokens: TokenService, clock: FrozenClock) -> None:
        other = TokenService("x" * 32, "collect-platform", clock)
        assert reason(tokens, other.issue("agent-7", [Role.AGENT])) == "bad-signature"

    def test_wrong_issuer(self, tokens: TokenService, clock: FrozenClock) -> None:
        other = TokenService(SECRET, "someone-else", clock)
        assert reason(tokens, other.issue("agent-7", [Role.AGENT])) == "wrong-issuer"

    def test_unknown_role(self, tokens: TokenService) -> None:
        token = self._encode(roles=["agent", "superuser"])
        assert reason(tokens, token) == "unknown-role"
        assert reason(tokens, self._encode(roles=[])) == "unknown-role"

    def test_alg_none_is_refused(self, tokens: TokenService) -> None:
        token = jwt.encode(self._claims(), key="", algorithm="none")
        assert reason(tokens, token) == "malformed"

    @pytest.mark.parametrize(
        "claims",
        [
            {"roles": "agent"},
            {"roles": [1]},
            {"exp": "tomorrow"},
            {"sub": ""},
        ],
    )
    def test_malformed_claims(self, tokens: TokenService, claims: dict[str, object]) -> None:
        assert reason(tokens, self._encode(**claims)) == "malformed"

    def test_missing_claims(self, tokens: TokenService) -> None:
        claims = self._claims()
        del claims["jti"]
        assert reason(tokens, jwt.encode(claims, SECRET, algorithm="HS256")) == "malformed"

    @pytest.mark.parametrize("garbage", ["", "abc", "a.b.c"])
    def test_garbage(self, tokens: TokenService, garbage: str) -> None:
        assert reason(tokens, garbage) == "malformed"

    def test_weak_secret_is_refused(self, clock: FrozenClock) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            TokenService("changeme", "collect-platform", clock)

    def test_issue_needs_subject_and_role(self, tokens: TokenService) -> None:
        with pytest.raises(ValueError, match="subject"):
            tokens.issue("", [Role.AGENT])
        with pytest.raises(ValueError, match="at least one role"):
            tokens.issue("agent-7", [])

    @staticmethod
    def _claims(**overrides: object) -> dict[str, object]:
        iat = int(START.timestamp())
        claims: dict[str, object] = {
            "iss": "collect-platform",
            "sub": "agent-7",
            "roles": ["agent"],
            "iat": iat,
            "exp": iat + 3600,
            "jti": "j-1",
        }
        claims.update(overrides)
        return claims

    def _encode(self, **overrides: object) -> str:
        return jwt.encode(self._claims(**overrides), SECRET, algorithm="HS256")
