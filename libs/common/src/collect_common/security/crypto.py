"""Field encryption of personal data at rest (SEC-PII), with key ids for rotation.

SEC-PII: national IDs, phone numbers, addresses and card numbers are stored encrypted.

Tokens. ``FieldCipher.encrypt`` turns a string into a compact text token::

    v1.<kid>.<urlsafe-base64 without padding of nonce (12 bytes) | ciphertext+tag>

AES-256-GCM with a random 96-bit nonce per encryption, so the same plaintext never encrypts
to the same token. The associated data binds the token version, the key id and the caller's
``aad`` (by convention the column, ``"debtor.national_id"``), so a token copied into another
column, or relabelled with another key id, fails to decrypt.

Keys. A ``Keyring`` comes from configuration as ``"k2:<base64 32 bytes>,k1:<base64 32 bytes>"``:
the first key is active (used for new tokens), all of them decrypt. Rotation: put the new key
first, deploy, re-encrypt old rows in the background (``needs_rotation`` / ``reencrypt``),
then drop the old key.

Lookups. Tokens are random, so an encrypted column cannot be searched by equality. Store
``FieldCipher.blind_index(value, purpose=...)`` (a keyed HMAC-SHA256) in a separate indexed
column and search that. Its key, ``index_key``, is separate from the encryption keys and
stable: rotating the encryption keys must not change the index.

SQLAlchemy. ``EncryptedText(aad="debtor.national_id")`` encrypts on write and decrypts on
read with the cipher installed by the composition root::

    set_field_cipher(FieldCipher.from_config(settings.field_keys, settings.index_key))

``use_field_cipher(cipher)`` overrides it for the current context (tests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Dialect
from sqlalchemy.types import Text, TypeDecorator

__all__ = [
    "DecryptionError",
    "EncryptedText",
    "FieldCipher",
    "Keyring",
    "get_field_cipher",
    "set_field_cipher",
    "use_field_cipher",
]

FORMAT_VERSION: Final = "v1"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
MIN_INDEX_KEY_BYTES: Final = 32

_KID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


class DecryptionError(Exception):
    """A token could not be decrypted: malformed, unknown key id, wrong aad or tampered."""


def _b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def _b64encode_url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Keyring:
    """AES-256 keys by key id; the first one is active.

    The repr shows key ids only, never key material.
    """

    __slots__ = ("_active", "_keys")

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        for kid, key in keys.items():
            if not _KID_RE.fullmatch(kid):
                raise ValueError(
                    f"key id {kid!r}: use 1-32 characters among letters, digits, '_' and '-'"
                )
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"key {kid!r} is {len(key)} bytes; AES-256 field keys must be exactly "
                    f"{KEY_BYTES} bytes"
                )
        if active not in keys:
            raise ValueError(f"active key id {active!r} is not in the keyring")
        self._keys: dict[str, bytes] = dict(keys)
        self._active = active

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``"k2:<base64>,k1:<base64>"``; the first key is the active one."""
        keys: dict[str, bytes] = {}
        active: str | None = None
        for position, item in enumerate(part.strip() for part in spec.split(",")):
            if not item:
                continue
            kid, sep, encoded = item.partition(":")
            kid = kid.strip()
            if not sep or not kid or not encoded.strip():
                raise ValueError(f"keyring entry {position + 1}: expected '<key id>:<base64 key>'")
            if kid in keys:
                raise ValueError(f"keyring: key id {kid!r} appears twice")
            try:
                key = _b64decode(encoded)
            except (binascii.Error, ValueError):
                raise ValueError(f"keyring: key {kid!r} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"keyring: key {kid!r} decodes to {len(key)} bytes; AES-256 field keys "
                    f"must be exactly {KEY_BYTES} bytes (44 base64 characters)"
                )
            keys[kid] = key
            active = active or kid
        if active is None:
            raise ValueError("keyring: no keys configured")
        return cls(keys, active)

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        """A keyring with one fresh random key. For development and tests."""
        return cls({kid: AESGCM.generate_key(bit_length=KEY_BYTES * 8)}, kid)

    def to_spec(self) -> str:
        """The configuration string ``parse`` reads (active key first). Contains key material."""
        ordered = [self._active, *(kid for kid in self._keys if kid != self._active)]
        return ",".join(
            f"{kid}:{base64.b64encode(self._keys[kid]).decode('ascii')}" for kid in ordered
        )

    @property
    def active_kid(self) -> str:
        return self._active

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def key(self, kid: str) -> bytes:
        """The key for ``kid``; ``KeyError`` when unknown."""
        return self._keys[kid]

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __repr__(self) -> str:
        return f"Keyring(active={self._active!r}, kids={sorted(self._keys)!r})"


def _associated_data(kid: str, aad: str) -> bytes:
    return f"{FORMAT_VERSION}\x00{kid}\x00{aad}".encode()


class FieldCipher:
    """Encrypts and decrypts personal-data fields (SEC-PII) and computes blind indexes."""

    __slots__ = ("_aeads", "_index_key", "_keyring", "_subkeys")

    def __init__(self, keyring: Keyring, *, index_key: bytes) -> None:
        if len(index_key) < MIN_INDEX_KEY_BYTES:
            raise ValueError(
                f"index_key is {len(index_key)} bytes; blind-index keys need at least "
                f"{MIN_INDEX_KEY_BYTES} random bytes"
            )
        self._keyring = keyring
        self._index_key = bytes(index_key)
        self._aeads = {kid: AESGCM(keyring.key(kid)) for kid in keyring.kids}
        self._subkeys: dict[str, bytes] = {}

    @classmethod
    def from_config(cls, keys: str, index_key: str) -> FieldCipher:
        """Build from settings: ``keys`` as for ``Keyring.parse``, ``index_key`` in base64."""
        try:
            raw_index_key = _b64decode(index_key)
        except (binascii.Error, ValueError):
            raise ValueError("index_key is not valid base64") from None
        return cls(Keyring.parse(keys), index_key=raw_index_key)

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def encrypt(self, plaintext: str, *, aad: str = "") -> str:
        """Encrypt with the active key: ``"v1.<kid>.<base64url(nonce|ciphertext)>"``."""
        kid = self._keyring.active_kid
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aeads[kid].encrypt(nonce, plaintext.encode(), _associated_data(kid, aad))
        return f"{FORMAT_VERSION}.{kid}.{_b64encode_url(nonce + sealed)}"

    def encrypt_many(self, plaintexts: Sequence[str | None], *, aad: str = "") -> list[str | None]:
        """``encrypt`` of every value (``None`` stays ``None``), for bulk writes.

        The same tokens as one ``encrypt`` call each (a fresh random nonce per value), with
        the nonces drawn from the OS in one read and the per-call set-up done once.
        """
        kid = self._keyring.active_kid
        seal = self._aeads[kid].encrypt
        associated = _associated_data(kid, aad)
        prefix = f"{FORMAT_VERSION}.{kid}."
        nonces = os.urandom(NONCE_BYTES * len(plaintexts))
        out: list[str | None] = []
        append = out.append
        for i, plaintext in enumerate(plaintexts):
            if plaintext is None:
                append(None)
                continue
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            sealed = seal(nonce, plaintext.encode(), associated)
            append(prefix + _b64encode_url(nonce + sealed))
        return out

    def decrypt(self, token: str, *, aad: str = "") -> str:
        """Decrypt a token made by ``encrypt`` with the same ``aad``.

        Raises ``DecryptionError`` for a malformed token, an unknown key id, a different
        ``aad`` or any tampering.
        """
        kid, payload = self._split(token)
        aead = self._aeads.get(kid)
        if aead is None:
            raise DecryptionError(f"unknown key id {kid!r}; is the keyring complete?")
        try:
            raw = _b64decode(payload)
        except (binascii.Error, ValueError):
            raise DecryptionError("token payload is not base64") from None
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("token payload is too short")
        try:
            plaintext = aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(kid, aad)
            )
        except InvalidTag:
            raise DecryptionError(
                f"token does not authenticate (key {kid!r}, aad {aad!r}): tampered, or "
                "written for another field"
            ) from None
        try:
            return plaintext.decode()
        except UnicodeDecodeError:  # pragma: no cover - only reachable with a forged key
            raise DecryptionError("plaintext is not UTF-8") from None

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` was encrypted with a key other than the active one."""
        kid, _ = self._split(token)
        return kid != self._keyring.active_kid

    def reencrypt(self, token: str, aad: str = "") -> str:
        """Decrypt ``token`` and encrypt it again with the active key (always a fresh token)."""
        return self.encrypt(self.decrypt(token, aad=aad), aad=aad)

    def blind_index(self, value: str, *, purpose: str) -> str:
        """A deterministic keyed hash of ``value`` for equality lookups (64 hex characters).

        HMAC-SHA256 under a key derived from ``index_key`` and ``purpose``, so the same national
        ID indexed for two purposes gives unrelated values. ``value`` is NFKC-normalised and
        stripped (full-width digits equal ASCII ones); any other canonical form (upper-case
        ``X`` in a national ID, digits only in a phone number) is the caller's to apply,
        identically on write and on lookup.
        """
        subkey = self._subkey(purpose)
        normalised = unicodedata.normalize("NFKC", value).strip()
        return hmac.digest(subkey, normalised.encode(), "sha256").hex()

    def _subkey(self, purpose: str) -> bytes:
        """The HMAC key of one ``purpose``, derived from ``index_key`` once and kept."""
        subkey = self._subkeys.get(purpose)
        if subkey is None:
            if not purpose:
                raise ValueError("blind_index needs a purpose, e.g. 'debtor.national_id'")
            subkey = hmac.new(
                self._index_key, b"blind-index\x00" + purpose.encode(), hashlib.sha256
            ).digest()
            if len(self._subkeys) < 64:  # purposes are a handful of constants
                self._subkeys[purpose] = subkey
        return subkey

    def __repr__(self) -> str:
        return f"FieldCipher({self._keyring!r})"

    @staticmethod
    def _split(token: str) -> tuple[str, str]:
        parts = token.split(".")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise DecryptionError("not a field-encryption token")
        version, kid, payload = parts
        if version != FORMAT_VERSION:
            raise DecryptionError(f"unsupported token version {version!r}")
        return kid, payload


# --- the cipher the SQLAlchemy type uses ----------------------------------------------------------

_installed_cipher: FieldCipher | None = None
_context_cipher: ContextVar[FieldCipher | None] = ContextVar("field_cipher", default=None)


def set_field_cipher(cipher: FieldCipher | None) -> None:
    """Install the process-wide cipher ``EncryptedText`` uses (the composition root calls this)."""
    global _installed_cipher
    _installed_cipher = cipher


@contextmanager
def use_field_cipher(cipher: FieldCipher) -> Iterator[FieldCipher]:
    """Use ``cipher`` instead of the installed one within this context (tests)."""
    reset_token = _context_cipher.set(cipher)
    try:
        yield cipher
    finally:
        _context_cipher.reset(reset_token)


def get_field_cipher() -> FieldCipher:
    cipher = _context_cipher.get() or _installed_cipher
    if cipher is None:
        raise RuntimeError(
            "no field cipher installed: call set_field_cipher() in the composition root "
            "before touching encrypted columns (SEC-PII)"
        )
    return cipher


class EncryptedText(TypeDecorator[str]):
    """A text column stored as a ``FieldCipher`` token (SEC-PII).

    ``Column("national_id", EncryptedText(aad="debtor.national_id"))``. The ``aad`` binds
    each token to its column. ``None`` stays NULL. Comparing the column with a value in SQL
    never matches (every encryption differs): look rows up through a blind-index column.
    """

    impl = Text
    cache_ok = True

    def __init__(self, aad: str) -> None:
        super().__init__()
        self.aad = aad

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText({self.aad!r}) takes str, not {type(value).__name__}")
        return get_field_cipher().encrypt(value, aad=self.aad)

    def process_bind_many(self, values: Sequence[str | None]) -> list[str | None]:
        """``process_bind_param`` of a whole column of a bulk write, encrypted in one go."""
        for value in values:
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"EncryptedText({self.aad!r}) takes str, not {type(value).__name__}"
                )
        return get_field_cipher().encrypt_many(values, aad=self.aad)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return get_field_cipher().decrypt(value, aad=self.aad)

    def __repr__(self) -> str:
        return f"EncryptedText(aad={self.aad!r})"
