"""Made-up national IDs carry the GB 11643 check character."""

from __future__ import annotations

import random

from collect_common.testing.identities import national_id, nth_national_id, with_check_char


def test_the_check_character_is_gb_11643s() -> None:
    assert with_check_char("11010519491231002") == "11010519491231002X"


def test_generated_ids_are_well_formed_and_the_nth_are_distinct() -> None:
    ids = [national_id(random.Random(i)) for i in range(50)]
    assert all(len(i) == 18 and with_check_char(i[:17]) == i for i in ids)
    nth = {nth_national_id(n, base=7) for n in range(3000)}
    assert len(nth) == 3000
