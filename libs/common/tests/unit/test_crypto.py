"""Field encryption of personal data (SEC-PII)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from collect_common.security.crypto import (
    DecryptionError,
    EncryptedText,
    FieldCipher,
    Keyring,
    get_field_cipher,
    set_field_cipher,
    use_field_cipher,
)

NATIONAL_ID = "11010519491231002X"
INDEX_KEY = bytes(range(32))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate("k1")


@pytest.fixture
def cipher(keyring: Keyring) -> FieldCipher:
    return FieldCipher(keyring, index_key=INDEX_KEY)


class TestKeyring:
    def test_parse_first_key_is_active(self) -> None:
        k1, k2 = os.urandom(32), os.urandom(32)
        ring = Keyring.parse(f"k2:{b64(k2)}, k1:{b64(k1)}")
        assert ring.active_kid == "k2"
        assert ring.kids == {"k1", "k2"}
        assert ring.key("k1") == k1
        assert ring.key("k2") == k2

    def test_parse_accepts_urlsafe_unpadded_base64(self) -> None:
        key = b"\xfb\xff" * 16
        encoded = base64.urlsafe_b64encode(key).decode().rstrip("=")
        assert Keyring.parse(f"k1:{encoded}").key("k1") == key

    @pytest.mark.parametrize("size", [16, 24, 31, 33])
    def test_wrong_key_size_is_refused(self, size: int) -> None:
        with pytest.raises(ValueError, match=f"decodes to {size} bytes.*exactly 32 bytes"):
            Keyring.parse(f"k1:{b64(os.urandom(size))}")

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("", "no keys"),
            ("k1", "expected '<key id>:<base64 key>'"),
            ("k1:", "expected '<key id>:<base64 key>'"),
            ("k1:not base64!!", "not valid base64"),
            (f"k.1:{b64(bytes(32))}", "key id"),
            (f"k1:{b64(bytes(32))},k1:{b64(bytes(32))}", "appears twice"),
        ],
    )
    def test_bad_specs_are_refused(self, spec: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            Keyring.parse(spec)

    def test_constructor_checks_sizes_too(self) -> None:
        with pytest.raises(ValueError, match="exactly 32 bytes"):
            Keyring({"k1": b"short"}, "k1")
        with pytest.raises(ValueError, match="not in the keyring"):
            Keyring({"k1": bytes(32)}, "k2")

    def test_generate_and_spec_roundtrip(self) -> None:
        ring = Keyring.generate("dev")
        again = Keyring.parse(ring.to_spec())
        assert again.active_kid == "dev"
        assert again.key("dev") == ring.key("dev")
        assert Keyring.generate("dev").key("dev") != ring.key("dev")

    def test_repr_hides_key_material(self, keyring: Keyring) -> None:
        assert b64(keyring.key("k1")) not in repr(keyring)
        assert "k1" in repr(keyring)


class TestFieldCipher:
    def test_roundtrip(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt(NATIONAL_ID, aad="debtor.national_id")
        assert cipher.decrypt(token, aad="debtor.national_id") == NATIONAL_ID

    def test_unicode_and_empty(self, cipher: FieldCipher) -> None:
        for value in ("北京市朝阳区建国路88号", ""):
            assert cipher.decrypt(cipher.encrypt(value)) == value

    def test_token_format(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt(NATIONAL_ID)
        version, kid, payload = token.split(".")
        assert (version, kid) == ("v1", "k1")
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert len(raw) == 12 + len(NATIONAL_ID) + 16  # nonce | ciphertext | tag
        assert NATIONAL_ID not in token

    def test_same_plaintext_encrypts_differently(self, cipher: FieldCipher) -> None:
        tokens = {cipher.encrypt(NATIONAL_ID, aad="a") for _ in range(20)}
        assert len(tokens) == 20

    def test_aad_is_bound(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt(NATIONAL_ID, aad="debtor.national_id")
        with pytest.raises(DecryptionError, match="another field"):
            cipher.decrypt(token, aad="debtor.phone")
        with pytest.raises(DecryptionError):
            cipher.decrypt(token)

    def test_tampering_is_detected(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt(NATIONAL_ID)
        head, payload = token.rsplit(".", 1)
        raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        raw[15] ^= 0x01
        forged = f"{head}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
        with pytest.raises(DecryptionError):
            cipher.decrypt(forged)

    def test_relabelled_key_id_is_detected(self) -> None:
        same_key = os.urandom(32)
        ring = Keyring({"k1": same_key, "k2": same_key}, "k1")
        cipher = FieldCipher(ring, index_key=INDEX_KEY)
        token = cipher.encrypt(NATIONAL_ID)
        with pytest.raises(DecryptionError):
            cipher.decrypt(token.replace("v1.k1.", "v1.k2.", 1))

    @pytest.mark.parametrize(
        ("token", "message"),
        [
            ("plaintext", "not a field-encryption token"),
            ("v1.k1", "not a field-encryption token"),
            ("v2.k1.AAAA", "unsupported token version"),
            ("v1.k9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "unknown key id 'k9'"),
            ("v1.k1.AAAA", "too short"),
            ("v1.k1.!!!!", "not base64"),
        ],
    )
    def test_malformed_tokens(self, cipher: FieldCipher, token: str, message: str) -> None:
        with pytest.raises(DecryptionError, match=message):
            cipher.decrypt(token)

    def test_other_keyring_cannot_decrypt(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt(NATIONAL_ID)
        stranger = FieldCipher(Keyring.generate("k1"), index_key=INDEX_KEY)
        with pytest.raises(DecryptionError):
            stranger.decrypt(token)

    def test_weak_index_key_is_refused(self, keyring: Keyring) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            FieldCipher(keyring, index_key=b"short")

    def test_from_config(self) -> None:
        k1 = os.urandom(32)
        cipher = FieldCipher.from_config(f"k1:{b64(k1)}", b64(INDEX_KEY))
        assert cipher.keyring.active_kid == "k1"
        assert cipher.decrypt(cipher.encrypt("x")) == "x"
        with pytest.raises(ValueError, match="index_key"):
            FieldCipher.from_config(f"k1:{b64(k1)}", "***")


class TestRotation:
    def test_old_tokens_still_decrypt_and_are_reencrypted(self) -> None:
        old_key, new_key = os.urandom(32), os.urandom(32)
        before = FieldCipher(Keyring.parse(f"k1:{b64(old_key)}"), index_key=INDEX_KEY)
        old_token = before.encrypt(NATIONAL_ID, aad="debtor.national_id")

        after = FieldCipher(
            Keyring.parse(f"k2:{b64(new_key)},k1:{b64(old_key)}"), index_key=INDEX_KEY
        )
        assert after.needs_rotation(old_token)
        assert after.decrypt(old_token, aad="debtor.national_id") == NATIONAL_ID

        new_token = after.reencrypt(old_token, "debtor.national_id")
        assert new_token.startswith("v1.k2.")
        assert not after.needs_rotation(new_token)
        assert after.decrypt(new_token, aad="debtor.national_id") == NATIONAL_ID

        # once k1 is dropped, only the re-encrypted token is readable
        final = FieldCipher(Keyring.parse(f"k2:{b64(new_key)}"), index_key=INDEX_KEY)
        assert final.decrypt(new_token, aad="debtor.national_id") == NATIONAL_ID
        with pytest.raises(DecryptionError, match="unknown key id 'k1'"):
            final.decrypt(old_token, aad="debtor.national_id")

    def test_reencrypt_refuses_wrong_aad(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt(NATIONAL_ID, aad="a")
        with pytest.raises(DecryptionError):
            cipher.reencrypt(token, "b")

    def test_needs_rotation_rejects_garbage(self, cipher: FieldCipher) -> None:
        with pytest.raises(DecryptionError):
            cipher.needs_rotation("garbage")


class TestBlindIndex:
    def test_deterministic_and_not_the_value(self, cipher: FieldCipher) -> None:
        first = cipher.blind_index(NATIONAL_ID, purpose="debtor.national_id")
        assert first == cipher.blind_index(NATIONAL_ID, purpose="debtor.national_id")
        assert len(first) == 64
        assert int(first, 16) >= 0
        assert NATIONAL_ID not in first

    def test_survives_key_rotation(self) -> None:
        before = FieldCipher(Keyring.generate("k1"), index_key=INDEX_KEY)
        after = FieldCipher(Keyring.generate("k2"), index_key=INDEX_KEY)
        assert before.blind_index(NATIONAL_ID, purpose="p") == after.blind_index(
            NATIONAL_ID, purpose="p"
        )

    def test_depends_on_index_key_purpose_and_value(self, cipher: FieldCipher) -> None:
        base = cipher.blind_index(NATIONAL_ID, purpose="debtor.national_id")
        other_key = FieldCipher(cipher.keyring, index_key=bytes(32))
        assert other_key.blind_index(NATIONAL_ID, purpose="debtor.national_id") != base
        assert cipher.blind_index(NATIONAL_ID, purpose="contact.national_id") != base
        assert cipher.blind_index("110105194912310021", purpose="debtor.national_id") != base

    def test_normalises_width_and_whitespace(self, cipher: FieldCipher) -> None:
        full_width = "１１０１０５１９４９１２３１００２Ｘ"
        assert cipher.blind_index(f" {full_width} ", purpose="p") == cipher.blind_index(
            NATIONAL_ID, purpose="p"
        )

    def test_needs_a_purpose(self, cipher: FieldCipher) -> None:
        with pytest.raises(ValueError, match="purpose"):
            cipher.blind_index(NATIONAL_ID, purpose="")


# --- the SQLAlchemy type ------------------------------------------------------------------------

metadata = MetaData()
debtors = Table(
    "debtors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("national_id", EncryptedText(aad="debtor.national_id")),
    Column("national_id_index", String(64), index=True),
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


class TestEncryptedText:
    def test_roundtrip_stores_a_token(self, engine: Engine, cipher: FieldCipher) -> None:
        with use_field_cipher(cipher), engine.begin() as conn:
            conn.execute(
                insert(debtors).values(
                    id=1,
                    national_id=NATIONAL_ID,
                    national_id_index=cipher.blind_index(NATIONAL_ID, purpose="debtor.nid"),
                )
            )
            stored = conn.execute(text("SELECT national_id FROM debtors")).scalar_one()
            assert stored.startswith("v1.k1.")
            assert NATIONAL_ID not in stored
            assert cipher.decrypt(stored, aad="debtor.national_id") == NATIONAL_ID

            found = conn.execute(
                select(debtors.c.national_id).where(
                    debtors.c.national_id_index
                    == cipher.blind_index(NATIONAL_ID, purpose="debtor.nid")
                )
            ).scalar_one()
            assert found == NATIONAL_ID

    def test_null_stays_null(self, engine: Engine, cipher: FieldCipher) -> None:
        with use_field_cipher(cipher), engine.begin() as conn:
            conn.execute(insert(debtors).values(id=1, national_id=None))
            assert conn.execute(text("SELECT national_id FROM debtors")).scalar_one() is None
            assert conn.execute(select(debtors.c.national_id)).scalar_one() is None

    def test_token_from_another_column_is_refused(
        self, engine: Engine, cipher: FieldCipher
    ) -> None:
        with use_field_cipher(cipher), engine.begin() as conn:
            conn.execute(
                text("INSERT INTO debtors (id, national_id) VALUES (1, :t)"),
                {"t": cipher.encrypt(NATIONAL_ID, aad="debtor.phone")},
            )
            with pytest.raises(DecryptionError):
                conn.execute(select(debtors.c.national_id)).scalar_one()

    def test_refuses_non_strings(self, engine: Engine, cipher: FieldCipher) -> None:
        with (
            use_field_cipher(cipher),
            engine.begin() as conn,
            pytest.raises(StatementError) as info,
        ):
            conn.execute(insert(debtors).values(id=1, national_id=12345))
        assert isinstance(info.value.orig, TypeError)
        assert "takes str" in str(info.value)

    def test_without_a_cipher_it_fails_loudly(self, engine: Engine) -> None:
        set_field_cipher(None)
        with engine.begin() as conn, pytest.raises(StatementError) as info:
            conn.execute(insert(debtors).values(id=1, national_id=NATIONAL_ID))
        assert isinstance(info.value.orig, RuntimeError)
        assert "no field cipher installed" in str(info.value)

    def test_installed_cipher_and_context_override(self, cipher: FieldCipher) -> None:
        other = FieldCipher(Keyring.generate("k9"), index_key=INDEX_KEY)
        set_field_cipher(cipher)
        try:
            assert get_field_cipher() is cipher
            with use_field_cipher(other):
                assert get_field_cipher() is other
            assert get_field_cipher() is cipher
        finally:
            set_field_cipher(None)
        with pytest.raises(RuntimeError, match="SEC-PII"):
            get_field_cipher()

    async def test_async_engine_roundtrip(self, cipher: FieldCipher) -> None:
        engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
        try:
            with use_field_cipher(cipher):
                async with engine.begin() as conn:
                    await conn.run_sync(metadata.create_all)
                    await conn.execute(insert(debtors).values(id=1, national_id=NATIONAL_ID))
                    raw = (await conn.execute(text("SELECT national_id FROM debtors"))).scalar_one()
                    value = (await conn.execute(select(debtors.c.national_id))).scalar_one()
            assert raw != NATIONAL_ID
            assert raw.startswith("v1.k1.")
            assert value == NATIONAL_ID
        finally:
            await engine.dispose()

    def test_repr_for_migrations(self) -> None:
        assert repr(EncryptedText(aad="debtor.national_id")) == (
            "EncryptedText(aad='debtor.national_id')"
        )
