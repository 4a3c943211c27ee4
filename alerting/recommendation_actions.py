"""What people do with a recommendation (accept, dismiss, snooze) and what they read of it.

Every change goes through `transition`: one row update, one row in
`app.recommendation_events` (who, from which status to which, the comment) and, for a person's
action, one row in `app.audit_log`, all in one transaction. The live event
(`recommendation_updated`) is published after that transaction: call these with a connection that
has no transaction open (`opsdash_core.db.warehouse()` as the app and CLI use it), so the block
commits before the event goes out and a reader reacting to it finds the row.

Only operators and admins act on recommendations; a viewer gets `PermissionDeniedError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from opsdash_core import events
from opsdash_core.accounts import User, audit, require_role

ACTING_ROLE = "operator"
# How long a recommendation stays open after its snooze ends, at least.
SNOOZE_GRACE = timedelta(days=1)
# A recommendation is open (someone should still act on it) while active or snoozed; the
# unique index `recommendations_open_idx` allows one open row per (entity, type, reason).
OPEN_STATUSES = ("active", "snoozed")
STATUSES = ("active", "accepted", "dismissed", "snoozed", "expired", "cleared")

SELECT_FOR_UPDATE_SQL = "select * from app.recommendations where id = %s for update"

UPDATE_SQL = """
update app.recommendations
set
    status = %(status)s,
    snoozed_until = %(snoozed_until)s,
    -- a snooze never outlasts the recommendation: it expires a day after it comes back at the
    -- earliest (greatest() ignores the null of every other action)
    expires_at = greatest(expires_at, %(keep_until)s),
    acted_by = coalesce(%(acted_by)s, acted_by),
    acted_at = coalesce(%(acted_at)s, acted_at),
    comment = coalesce(%(comment)s, comment),
    updated_at = %(at)s
where id = %(id)s
returning *
"""

INSERT_EVENT_SQL = """
insert into app.recommendation_events
    (recommendation_id, from_status, to_status, actor, actor_type, comment, at)
values (%s, %s, %s, %s, %s, %s, %s)
"""

LIST_SQL = """
select *
from app.recommendations
where
    (%(status)s::text is null or status = %(status)s)
    and (%(entity_type)s::text is null or entity_type = %(entity_type)s)
    and (%(entity_id)s::bigint is null or entity_id = %(entity_id)s)
order by priority desc, created_at desc, id desc
limit %(limit)s
"""

HISTORY_SQL = """
select id, recommendation_id, from_status, to_status, actor, actor_type, comment, at
from app.recommendation_events
where recommendation_id = %s
order by at, id
"""

EFFECTIVENESS_SQL = """
select *
from marts.recommendation_effectiveness
order by week_start_date desc, rec_type, outcome
"""


class RecommendationError(ValueError):
    """A user-facing problem with an action on a recommendation (the message is safe to show)."""


class UnknownRecommendationError(RecommendationError, LookupError):
    """No recommendation has that id."""


class RecommendationStateError(RecommendationError):
    """The recommendation's status does not allow the action (e.g. accepting a dismissed one)."""


@dataclass(frozen=True)
class Change:
    """One status change to record: the target status and the fields the action sets."""

    to_status: str
    actor: str
    actor_type: str = "user"
    comment: str | None = None
    snoozed_until: datetime | None = None


def transition(
    conn: psycopg.Connection, rec_id: int, change: Change, allowed_from: Iterable[str], at: datetime
) -> tuple[dict[str, Any], str]:
    """Move one recommendation to `change.to_status` in the caller's transaction; returns the
    updated row and the status it had. Locks the row, so two clicks cannot both act on it."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(SELECT_FOR_UPDATE_SQL, (rec_id,))
        row = cur.fetchone()
        if row is None:
            raise UnknownRecommendationError(f"Recommendation {rec_id} does not exist.")
        allowed = tuple(allowed_from)
        if row["status"] not in allowed:
            raise RecommendationStateError(
                f"Recommendation {rec_id} is {row['status']}; "
                f"only {' or '.join(allowed)} recommendations can be {change.to_status}."
            )
        by_user = change.actor_type == "user"
        cur.execute(
            UPDATE_SQL,
            {
                "id": rec_id,
                "status": change.to_status,
                "snoozed_until": change.snoozed_until,
                "keep_until": change.snoozed_until + SNOOZE_GRACE if change.snoozed_until else None,
                "acted_by": change.actor if by_user else None,
                "acted_at": at if by_user else None,
                "comment": change.comment,
                "at": at,
            },
        )
        updated = cur.fetchone()
        assert updated is not None  # the row is locked: it cannot have gone
        cur.execute(
            INSERT_EVENT_SQL,
            (
                rec_id,
                row["status"],
                change.to_status,
                change.actor,
                change.actor_type,
                change.comment,
                at,
            ),
        )
    return updated, row["status"]


def event_payload(row: Mapping[str, Any], from_status: str | None, actor: str) -> dict[str, Any]:
    """What a live reader needs to refresh its view of one recommendation."""
    return {
        "id": row["id"],
        "entity_type": row["entity_type"],
        "entity_id": row["entity_id"],
        "rec_type": row["rec_type"],
        "reason_code": row["reason_code"],
        "from_status": from_status,
        "status": row["status"],
        "priority": row["priority"],
        "actor": actor,
    }


def _act(
    conn: psycopg.Connection,
    rec_id: int,
    user: User,
    change: Change,
    allowed_from: Iterable[str],
    now: datetime | None,
) -> dict[str, Any]:
    require_role(user, ACTING_ROLE)
    at = now or datetime.now(UTC)
    with conn.transaction():
        row, from_status = transition(conn, rec_id, change, allowed_from, at)
        audit(
            conn,
            user.username,
            f"recommendation.{change.to_status}",
            recommendation_id=rec_id,
            entity_type=row["entity_type"],
            entity_id=row["entity_id"],
            rec_type=row["rec_type"],
            from_status=from_status,
            comment=change.comment,
            **({"snoozed_until": change.snoozed_until.isoformat()} if change.snoozed_until else {}),
        )
    events.publish("recommendation_updated", event_payload(row, from_status, user.username))
    return row


def _comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    return text or None


def accept(
    conn: psycopg.Connection,
    rec_id: int,
    user: User,
    comment: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The team will do (or did) what the recommendation says; returns the updated row."""
    change = Change("accepted", user.username, comment=_comment(comment))
    return _act(conn, rec_id, user, change, OPEN_STATUSES, now)


def dismiss(
    conn: psycopg.Connection,
    rec_id: int,
    user: User,
    comment: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The team decided against it; the comment says why. Returns the updated row."""
    change = Change("dismissed", user.username, comment=_comment(comment))
    return _act(conn, rec_id, user, change, OPEN_STATUSES, now)


def snooze(
    conn: psycopg.Connection,
    rec_id: int,
    user: User,
    until: datetime,
    comment: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Hide an active recommendation until `until`; the next generation run after that returns
    it to active (if its trigger still holds and it has not expired). Returns the updated row."""
    require_role(user, ACTING_ROLE)
    at = now or datetime.now(UTC)
    if until.tzinfo is None:
        raise RecommendationError("Snooze until needs a time zone (UTC).")
    if until <= at:
        raise RecommendationError("Snooze until must be in the future.")
    change = Change("snoozed", user.username, comment=_comment(comment), snoozed_until=until)
    return _act(conn, rec_id, user, change, ("active",), at)


def list_recommendations(
    conn: psycopg.Connection,
    *,
    status: str | None = "active",
    entity_type: str | None = None,
    entity_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Recommendations, highest priority first (`status=None` for every status)."""
    if status is not None and status not in STATUSES:
        raise RecommendationError(f"Status must be one of {', '.join(STATUSES)}; got {status!r}.")
    params = {
        "status": status,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "limit": max(0, limit),
    }
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LIST_SQL, params)
        return cur.fetchall()


def recommendation_history(conn: psycopg.Connection, rec_id: int) -> list[dict[str, Any]]:
    """Every status change of one recommendation, oldest first (who, when, comment)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(HISTORY_SQL, (rec_id,))
        return cur.fetchall()


def effectiveness(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Rows of `marts.recommendation_effectiveness`, newest week first: per week, type and
    outcome (accepted/dismissed), the share of customers who booked again within 14 days.
    Empty until dbt has built the mart."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select to_regclass('marts.recommendation_effectiveness') is not null")
        exists = cur.fetchone()
        if not exists or not next(iter(exists.values())):
            return []
        cur.execute(EFFECTIVENESS_SQL)
        return cur.fetchall()
