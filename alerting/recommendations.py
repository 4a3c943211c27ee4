"""Recommendations in `app.recommendations`: generated from the marts and the churn scores, acted
on by people (accept, dismiss, snooze), and measured (`marts.recommendation_effectiveness`).

`generate_recommendations(conn)` is one pass, in one transaction, serialized by an advisory lock:
1. open recommendations past `expires_at` become `expired`;
2. snoozed ones past `snoozed_until` become `active` again;
3. open ones whose trigger no longer holds become `cleared` (a family whose source relation does
   not exist yet is left alone, so a cold start clears nothing);
4. open ones still triggered get the current wording, priority and details;
5. new candidates open, highest priority first, while their type has fewer than
   `max_open_per_type` open - so a cold start over thousands of at-risk customers opens a
   workable list, not thousands of rows. A candidate is skipped when the same
   (entity, type) already opened `max_enrollments` times within `enrollment_period`, or the same
   (entity, type, reason) was accepted, dismissed or expired within `cooldown`.
Every status change writes `app.recommendation_events` (actor `system`); the live events
(`recommendation_created`, `recommendation_updated`) are published after the commit.

The people-facing operations live in `recommendation_actions` and are re-exported here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerting.recommendation_actions import (
    OPEN_STATUSES,
    RecommendationError,
    RecommendationStateError,
    UnknownRecommendationError,
    accept,
    dismiss,
    effectiveness,
    event_payload,
    list_recommendations,
    recommendation_history,
    snooze,
)
from alerting.recommendation_rules import (
    CUSTOMER_TYPES,
    SUPPLY_TYPES,
    TUTOR_TYPES,
    Candidate,
    customer_candidates,
    supply_candidates,
    tutor_candidates,
)
from alerting.recommendation_sql import (
    CLEARED_WHERE,
    CREATED_EVENT_SQL,
    CUSTOMERS_SQL,
    EXISTS_SQL,
    EXPIRED_WHERE,
    INSERT_SQL,
    LOCK_SQL,
    OPEN_SQL,
    RECENT_SQL,
    REFRESH_SQL,
    SNOOZE_OVER_WHERE,
    SUPPLY_SQL,
    SYSTEM_TRANSITION_SQL,
    TUTORS_SQL,
)
from opsdash_core import events
from opsdash_core.settings import Settings, get_settings

__all__ = [
    "GenerationSummary",
    "RecommendationError",
    "RecommendationPolicy",
    "RecommendationStateError",
    "UnknownRecommendationError",
    "accept",
    "dismiss",
    "effectiveness",
    "generate_recommendations",
    "list_recommendations",
    "recommendation_history",
    "snooze",
]


@dataclass(frozen=True)
class RecommendationPolicy:
    """How many recommendations a run may open and how often an entity may get one."""

    max_open_per_type: int = 100
    max_enrollments: int = 2
    enrollment_period: timedelta = timedelta(days=30)
    cooldown: timedelta = timedelta(days=7)
    expire_after: timedelta = timedelta(days=14)
    supply_horizon_hours: int = 48

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RecommendationPolicy:
        s = settings or get_settings()
        return cls(
            max_open_per_type=s.recommendations_max_open_per_type,
            max_enrollments=s.recommendations_max_enrollments,
            enrollment_period=timedelta(days=s.recommendations_enrollment_days),
            cooldown=timedelta(days=s.recommendations_cooldown_days),
            expire_after=timedelta(days=s.recommendations_expire_days),
            supply_horizon_hours=s.recommendations_supply_horizon_hours,
        )


@dataclass
class GenerationSummary:
    """What one generation pass changed (ids per outcome) and what it held back."""

    families: list[str] = field(default_factory=list)
    candidates: int = 0
    created: list[int] = field(default_factory=list)
    refreshed: int = 0
    cleared: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    unsnoozed: list[int] = field(default_factory=list)
    capped: int = 0
    over_limit: int = 0
    open_by_type: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"{len(self.created)} new, {self.refreshed} refreshed, {len(self.cleared)} cleared, "
            f"{len(self.expired)} expired, {len(self.unsnoozed)} back from snooze; "
            f"{self.candidates} candidates, {self.capped} held back by the re-enrollment cap or "
            f"cooldown, {self.over_limit} over the per-type limit "
            f"(families: {', '.join(self.families) or 'none'})"
        )


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    row = conn.execute(EXISTS_SQL, (relation,)).fetchone()
    return bool(row and row[0])


def _fetch(
    conn: psycopg.Connection, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def collect_candidates(
    conn: psycopg.Connection, now: datetime, policy: RecommendationPolicy
) -> tuple[list[str], list[str], list[Candidate]]:
    """(families evaluated, their rec types, candidates) from the relations that exist."""
    families: list[str] = []
    types: list[str] = []
    found: list[Candidate] = []
    if _exists(conn, "marts.customer_health"):
        rows = _fetch(conn, CUSTOMERS_SQL)
        found += customer_candidates(rows, now, policy.expire_after)
        families.append("customer")
        types += CUSTOMER_TYPES
    if _exists(conn, "marts.tutor_performance"):
        found += tutor_candidates(_fetch(conn, TUTORS_SQL), now, policy.expire_after)
        families.append("tutor")
        types += TUTOR_TYPES
    if _exists(conn, "marts.demand_supply_gaps_hourly"):
        rows = _fetch(conn, SUPPLY_SQL, (policy.supply_horizon_hours,))
        found += supply_candidates(rows, now, policy.supply_horizon_hours)
        families.append("supply")
        types += SUPPLY_TYPES
    return families, types, found


def _system_transition(
    conn: psycopg.Connection, where: str, to_status: str, comment: str, params: dict[str, Any]
) -> list[dict]:
    query = sql.SQL(SYSTEM_TRANSITION_SQL).format(where=sql.SQL(where))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, {**params, "to_status": to_status, "comment": comment})
        return cur.fetchall()


def _blocked(
    recent: Iterable[dict], now: datetime, policy: RecommendationPolicy
) -> tuple[set[tuple[str, int, str]], set[tuple[str, int, str, str]]]:
    """(entity, type) pairs at their enrollment cap; (entity, type, reason) keys cooling down."""
    enrolled: Counter[tuple[str, int, str]] = Counter()
    cooling: set[tuple[str, int, str, str]] = set()
    for r in recent:
        pair = (r["entity_type"], int(r["entity_id"]), r["rec_type"])
        if r["created_at"] >= now - policy.enrollment_period:
            enrolled[pair] += 1
        closed = r["status"] in ("accepted", "dismissed", "expired")
        if closed and r["updated_at"] >= now - policy.cooldown:
            cooling.add((*pair, r["reason_code"]))
    capped = {pair for pair, n in enrolled.items() if n >= policy.max_enrollments}
    return capped, cooling


def generate_recommendations(
    conn: psycopg.Connection,
    *,
    now: datetime | None = None,
    policy: RecommendationPolicy | None = None,
) -> GenerationSummary:
    """One generation pass (see the module docstring); commits, then publishes live events."""
    now = now or datetime.now(UTC)
    policy = policy or RecommendationPolicy.from_settings()
    summary = GenerationSummary()
    published: list[tuple[str, dict[str, Any]]] = []
    with conn.transaction():
        conn.execute(LOCK_SQL)
        base = {"now": now, "open": list(OPEN_STATUSES)}
        for where, to_status, comment, ids in (
            (EXPIRED_WHERE, "expired", "expired without action", summary.expired),
            (SNOOZE_OVER_WHERE, "active", "snooze ended", summary.unsnoozed),
        ):
            for row in _system_transition(conn, where, to_status, comment, base):
                ids.append(int(row["id"]))
                published.append(
                    ("recommendation_updated", event_payload(row, row["from_status"], "system"))
                )

        families, types, candidates = collect_candidates(conn, now, policy)
        summary.families, summary.candidates = families, len(candidates)
        by_key = {c.key: c for c in candidates}

        open_rows = _fetch(conn, OPEN_SQL, (list(OPEN_STATUSES), types))
        gone = [
            int(r["id"])
            for r in open_rows
            if (r["entity_type"], int(r["entity_id"]), r["rec_type"], r["reason_code"])
            not in by_key
        ]
        if gone:
            params = {**base, "ids": gone}
            for row in _system_transition(
                conn, CLEARED_WHERE, "cleared", "trigger cleared", params
            ):
                summary.cleared.append(int(row["id"]))
                published.append(
                    ("recommendation_updated", event_payload(row, row["from_status"], "system"))
                )

        open_keys: set[tuple[str, int, str, str]] = set()
        open_count: Counter[str] = Counter()
        for r in open_rows:
            key = (r["entity_type"], int(r["entity_id"]), r["rec_type"], r["reason_code"])
            if key not in by_key:
                continue
            open_keys.add(key)
            open_count[r["rec_type"]] += 1
            c = by_key[key]
            if (r["reason"], r["action"], r["priority"], r["details"]) != (
                c.reason,
                c.action,
                c.priority,
                c.details,
            ):
                conn.execute(
                    REFRESH_SQL,
                    {
                        "id": r["id"],
                        "reason": c.reason,
                        "action": c.action,
                        "priority": c.priority,
                        "details": Jsonb(c.details),
                        "expires_at": c.expires_at,
                        "now": now,
                    },
                )
                summary.refreshed += 1

        recent = _fetch(
            conn,
            RECENT_SQL,
            {
                "types": types,
                "enrolled_since": now - policy.enrollment_period,
                "closed_since": now - policy.cooldown,
            },
        )
        capped, cooling = _blocked(recent, now, policy)
        fresh = sorted(
            (c for c in candidates if c.key not in open_keys),
            key=lambda c: (-c.priority, c.entity_type, c.entity_id, c.rec_type, c.reason_code),
        )
        for c in fresh:
            if c.key[:3] in capped or c.key in cooling:
                summary.capped += 1
                continue
            if open_count[c.rec_type] >= policy.max_open_per_type:
                summary.over_limit += 1
                continue
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(
                    INSERT_SQL,
                    {
                        "entity_type": c.entity_type,
                        "entity_id": c.entity_id,
                        "rec_type": c.rec_type,
                        "reason_code": c.reason_code,
                        "reason": c.reason,
                        "action": c.action,
                        "priority": c.priority,
                        "owner_role": c.owner_role,
                        "details": Jsonb(c.details),
                        "due_at": c.due_at,
                        "expires_at": c.expires_at,
                        "now": now,
                    },
                )
                created = cur.fetchone()
            if created is None:  # opened meanwhile by another writer: the index kept it single
                continue
            conn.execute(CREATED_EVENT_SQL, (created["id"], c.reason, now))
            open_count[c.rec_type] += 1
            summary.created.append(int(created["id"]))
            published.append(("recommendation_created", event_payload(created, None, "system")))
        summary.open_by_type = dict(open_count)
    for event_type, payload in published:
        events.publish(event_type, payload)
    return summary
