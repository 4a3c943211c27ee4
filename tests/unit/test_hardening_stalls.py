"""A quarantined row's source time: its own `updated_at` when readable, else when it was seen
(a malformed `updated_at` may be the very reason it was quarantined)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opsdash_core.ingest_health import _source_time

SEEN = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-29 21:00:00+00:00", datetime(2026, 11, 29, 21, 0, tzinfo=UTC)),
        ("2026-11-29T21:00:00Z", datetime(2026, 11, 29, 21, 0, tzinfo=UTC)),
        ("2026-02-30 21:00:00+00:00", SEEN),
        ("2026-11-29 21:00:00", SEEN),  # no zone: not comparable, use when it was seen
        ("yesterday", SEEN),
        (None, SEEN),
    ],
)
def test_source_time(raw: str | None, expected: datetime) -> None:
    assert _source_time(raw, SEEN) == expected
