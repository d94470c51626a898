"""Parsing the dialer's webhook secrets (``key_id:secret`` pairs, several while rotating)."""

import pytest

from contact_svc.bootstrap import webhook_secrets


def test_pairs_are_parsed_with_either_separator() -> None:
    assert webhook_secrets("old:" + "a" * 32 + "; new:" + "b:c" * 11) == {
        "old": b"a" * 32,
        "new": b"b:c" * 11,
    }


@pytest.mark.parametrize("spec", ["", "no-secret", ":secret", "key:"])
def test_malformed_entries_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="webhook_secrets"):
        webhook_secrets(spec)
