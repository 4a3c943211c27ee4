"""History: turn the latent model into the marketplace's rows for `days` before `history_end`.

`simulate()` is pure numpy (deterministic for a seed) and returns every table as columns;
`simulator.generator.generate()` streams them into PostgreSQL with binary COPY.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import model as m
from simulator.bookings import DayCurves, draw_bookings
from simulator.columns import UNSET, Cat, Column, ids_by
from simulator.history_tables import call_table, customer_table, session_tables, supply_tables
from simulator.model import DAY


@dataclass
class History:
    """Every table of the source database (and truth.*) as ordered column arrays."""

    seed: int
    scale: int
    days: int
    history_end: int
    rate_scale: float = 1.0
    tables: dict[str, dict[str, Column]] = field(default_factory=dict)

    def rows(self, table: str) -> int:
        return len(next(iter(self.tables[table].values())))


def draw_signups(rng: np.random.Generator, n: int, start: int, end: int) -> np.ndarray:
    """Sign-up times, sorted, over the year before the window and the window itself: seasonal
    (fewer in summer and on holidays) with mild growth, so the active base is near steady."""
    first = start - 365 * DAY
    grid = np.arange(first // DAY, end // DAY + 1)
    w = m.day_factors(grid, 0) * np.linspace(0.85, 1.15, len(grid))
    cum = np.concatenate([[0], np.cumsum(w)])
    x = np.interp(rng.random(n) * cum[-1], cum, np.arange(len(cum)))
    return np.sort(np.clip(grid[0] * DAY + (x * DAY).astype(np.int64), first, end - 60))


def simulate(seed: int, scale: int, days: int, history_end: int) -> History:
    """The whole marketplace history for `days` up to `history_end` (epoch seconds)."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    end = int(history_end)
    start = end - days * DAY
    tutors = m.draw_tutors(rngs[0], m.tutor_count(scale), start)
    tutor_id = ids_by(tutors.hired_at)
    cust = m.draw_customers(rngs[2], draw_signups(rngs[1], scale, start, end), tutors)
    curves = DayCurves(start // DAY - 1, end // DAY + 9)
    target = round(m.SESSIONS_PER_CUSTOMER_DAY * scale * days)
    b = draw_bookings(rngs[3], cust, tutors, curves, start, end, target)
    out = session_tables(rngs[4], b, cust, tutors, tutor_id, start, end)
    ev = out.pop("events")
    h = History(seed=seed, scale=scale, days=days, history_end=end)
    h.tables.update(supply_tables(rngs[5], tutors, tutor_id, start, end))
    h.tables["customers"] = customer_table(rngs[6], cust, ev, float(b["scale"][0]), start, end)
    h.tables.update(out)
    h.tables["support.inbound_calls"] = call_table(rngs[7], cust, ev, start, end)
    churned = cust.churn_at <= end + 60 * DAY
    h.tables["truth.customer_outcomes"] = {
        "customer_id": np.arange(1, cust.n + 1),
        "churned": churned,
        "churn_cause": Cat(np.where(churned, cust.cause, len(m.CAUSES)), (*m.CAUSES, None)),
        "churned_at": np.where(churned, cust.churn_at, UNSET),
    }
    h.tables["truth.tutor_quality"] = {
        "tutor_id": tutor_id,
        "quality": tutors.quality,
        "no_show_rate": tutors.no_show_rate,
    }
    h.rate_scale = float(b["scale"][0])
    h.tables["truth.customer_latent"] = latent_columns(
        cust, tutor_id, h.rate_scale, np.arange(1, cust.n + 1)
    )
    for table, cols in h.tables.items():  # rows in key order, as the app inserted them
        order = np.argsort(next(iter(cols.values())), kind="stable")
        h.tables[table] = {name: v[order] for name, v in cols.items()}
    return h


def latent_columns(
    cust: m.Customers, tutor_id: np.ndarray, rate_scale: float, ids: np.ndarray
) -> dict[str, Column]:
    """What live mode needs to keep each customer behaving as the model says."""

    def tid(i: np.ndarray) -> np.ndarray:
        return np.where(i >= 0, tutor_id[np.maximum(i, 0)], UNSET)

    return {
        "customer_id": ids,
        "rate_per_week": cust.rate * rate_scale,
        "main_subject_id": cust.main_subject + 1,
        "second_subject_id": np.where(cust.second_subject >= 0, cust.second_subject + 1, UNSET),
        "primary_tutor_id": tid(cust.primary),
        "second_tutor_id": tid(cust.primary2),
        "utc_offset": cust.tz_offset,
        "pref_local_hour": cust.pref_hour,
        "switch_propensity": cust.switch_p,
        "support_propensity": cust.support_p,
        "learning_rate": cust.learning,
        "churn_at": cust.churn_at,
        "churn_cause": Cat(cust.cause, m.CAUSES),
        "decline_days": cust.decline_days,
    }
