"""When the daily digest sensor acts: once per UTC day, from DIGEST_HOUR_UTC on."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestration.defs.alerting.digest import DIGEST_HOUR_UTC, digest_due


def test_digest_is_due_once_a_day_after_its_hour() -> None:
    before = datetime(2026, 12, 1, DIGEST_HOUR_UTC - 1, 59, tzinfo=UTC)
    after = datetime(2026, 12, 1, DIGEST_HOUR_UTC, 0, tzinfo=UTC)
    assert not digest_due(before, "2026-11-30")
    assert digest_due(after, "2026-11-30")
    assert digest_due(after, None)
    assert not digest_due(after, "2026-12-01")
