"""Export rules (SEC-EXPORT): who, the purpose, the period, masked rows, safe CSV cells."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from case_svc.domain.exports import (
    COLUMNS,
    ExportPolicy,
    ExportRefused,
    ExportScope,
    acting_role,
    check_request,
    masked_row,
    render,
)
from collect_common.security.auth import Role

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SCOPE = ExportScope("bank-core", T0, T0 + timedelta(days=30))


def case(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": "c-1",
        "bank_id": "bank-core",
        "contract_no": '=HYPERLINK("http://x")',
        "debtor_id": "d-1",
        "name": "欧阳娜娜",
        "national_id": "11010519491231002X",
        "phones": json.dumps(["13812345678", "+86 139-1234-5678"]),
        "address": "北京市朝阳区建国路88号",
        "status": "active",
        "bucket": "M1",
        "track": "gentle",
        "principal": Decimal("100.00"),
        "interest": Decimal("5.5"),
        "fees": Decimal("0"),
        "paid_total": Decimal("10.00"),
        "overdue_since": date(2026, 10, 1),
        "agent_id": None,
        "team_id": None,
        "region": "110105",
        "customer_group": None,
        "product": "-card",
        "opened_at": T0,
        "updated_at": T0,
    }
    row.update(over)
    return row


def test_only_ops_and_the_auditor_export_and_the_auditor_role_is_recorded_first() -> None:
    assert acting_role([Role.OPS]) is Role.OPS
    assert acting_role([Role.OPS, Role.AUDITOR]) is Role.AUDITOR
    for role in (Role.BANK, Role.AGENT, Role.QA, Role.DIALER, Role.COMPLAINT):
        with pytest.raises(ExportRefused) as refused:
            acting_role([role])
        assert refused.value.rule == "SEC-ACCESS"


def test_the_purpose_must_be_stated_in_the_policys_length() -> None:
    policy = ExportPolicy(purpose_min_length=12)
    assert check_request(policy, "  portfolio review  ", SCOPE) == "portfolio review"
    for purpose in (None, "", "   ", "review"):
        with pytest.raises(ExportRefused) as refused:
            check_request(policy, purpose, SCOPE)
        assert (refused.value.field, refused.value.rule) == ("purpose", "SEC-EXPORT")
    assert ExportPolicy.rule_of("purpose_min_length") == "SEC-EXPORT"


def test_the_period_is_aware_ordered_and_bounded() -> None:
    policy = ExportPolicy(max_period_days=31)
    bad = [
        (ExportScope("b", T0, T0), "scope.changed_to"),
        (ExportScope("b", T0, T0 + timedelta(days=32)), "scope.changed_to"),
        (ExportScope("b", T0.replace(tzinfo=None), T0), "scope.changed_from"),
    ]
    for scope, field in bad:
        with pytest.raises(ExportRefused) as refused:
            check_request(policy, "portfolio review", scope)
        assert refused.value.field == field


def test_a_row_masks_every_personal_field_and_keeps_amounts_exact() -> None:
    row = masked_row(case())
    assert row["national_id"] == "110***********002X"
    assert row["phones"] == "138****5678;+86 139-****-5678"
    assert row["debtor_name"] == "欧***" and row["address"] == "北京市朝阳区" + "*" * 6
    assert (row["principal"], row["interest"], row["balance"]) == ("100.00", "5.50", "95.50")
    assert set(row) == set(COLUMNS)


def test_csv_cells_never_start_a_spreadsheet_formula() -> None:
    text = render([masked_row(case())], "csv")
    header, values = list(csv.reader(io.StringIO(text)))
    got = dict(zip(header, values, strict=True))
    assert got["contract_no"] == '\'=HYPERLINK("http://x")'
    assert got["product"] == "'-card"
    assert got["phones"].startswith("138")  # digits stay as they are
    assert got["agent_id"] == ""
    ndjson = render([masked_row(case())], "ndjson")
    assert json.loads(ndjson)["contract_no"] == '=HYPERLINK("http://x")'
