"""When customers book sessions: seasonal day curves, the customer's usual local hour, and the
history's calibrated stream of session requests (matched to tutors as they are made)."""

from __future__ import annotations

import numpy as np

from simulator import model as m
from simulator.columns import DURATIONS
from simulator.matching import match
from simulator.model import DAY, HOUR

REQUEST_CANCEL_P = 0.015  # requests the customer withdraws before a tutor is found


class DayCurves:
    """Cumulative day weights per category on [day0, day1]: sampling times by inverse CDF."""

    def __init__(self, day0: int, day1: int) -> None:
        self.day0 = day0
        self.edges = np.arange(day1 - day0 + 1, dtype=float)
        days = np.arange(day0, day1)
        self.cum = [
            np.concatenate([[0], np.cumsum(m.day_factors(days, c))])
            for c in range(len(m.CATEGORY_NAMES))
        ]

    def pos(self, t: np.ndarray) -> np.ndarray:
        return np.clip((t - self.day0 * DAY) / DAY, 0, self.edges[-1])

    def weight(self, cat: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        out = np.zeros(len(cat))
        for c in np.unique(cat):
            i = cat == c
            out[i] = np.interp(self.pos(t1[i]), self.edges, self.cum[c]) - np.interp(
                self.pos(t0[i]), self.edges, self.cum[c]
            )
        return np.maximum(out, 0)

    def sample(
        self, rng: np.random.Generator, cat: np.ndarray, t0: np.ndarray, t1: np.ndarray
    ) -> np.ndarray:
        """One time per row, between t0 and t1, following the category's day curve."""
        out = np.zeros(len(cat))
        u = rng.random(len(cat))
        for c in np.unique(cat):
            i = cat == c
            lo = np.interp(self.pos(t0[i]), self.edges, self.cum[c])
            hi = np.interp(self.pos(t1[i]), self.edges, self.cum[c])
            out[i] = np.interp(lo + u[i] * (hi - lo), self.cum[c], self.edges)
        return self.day0 * DAY + out * DAY


def local_start(
    rng: np.random.Generator, cust: m.Customers, who: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Put a session on the day of `t` at the customer's usual local hour (or a typical one)."""
    day = t.astype(np.int64) // DAY
    weekend = m.weekday(day) >= 5
    usual = rng.random(len(who)) < np.where(weekend, 0.35, 0.65)
    hour = np.where(usual, cust.pref_hour[who], -1)
    for flag in (False, True):
        i = np.flatnonzero((weekend == flag) & (hour < 0))
        hour[i] = rng.choice(24, len(i), p=m.hour_profile(flag))
    minute = np.where(rng.random(len(who)) < 0.2, 30, 0)
    offset = cust.tz_offset[who] + m.dst_mask(day)
    return day * DAY + hour * HOUR + minute * 60 - offset * HOUR


def draw_bookings(
    rng: np.random.Generator,
    cust: m.Customers,
    tutors: m.Tutors,
    curves: DayCurves,
    start: int,
    end: int,
    target: int,
) -> dict[str, np.ndarray]:
    """Session requests (matched or not) of every customer, calibrated to `target` sessions:
    oversample from an estimate, then thin uniformly (a second pass if supply was too short)."""
    cat = m.catalog().category[cust.main_subject]
    t0 = np.maximum(cust.signup + 2 * HOUR, start)
    expected = cust.rate / 7 * curves.weight(cat, t0, np.minimum(cust.churn_at, end))
    fade_days = np.clip(
        (np.minimum(cust.churn_at, end) - np.maximum(cust.churn_at - cust.decline_days * DAY, t0))
        / DAY,
        0,
        None,
    )
    expected = np.maximum(expected - cust.rate / 7 * 0.6 * fade_days, 0)
    scale = target * 1.3 / max(expected.sum(), 1.0)
    cols, past = _book(rng, cust, tutors, curves, start, end, scale)
    if past * (1 - REQUEST_CANCEL_P) < target:
        scale *= 1.15 * target / max(past * (1 - REQUEST_CANCEL_P), 1)
        cols, past = _book(rng, cust, tutors, curves, start, end, scale)
    thin = min(1.0, target / max(past * (1 - REQUEST_CANCEL_P), 1))
    keep = rng.random(len(cols["who"])) < thin
    cols = {name: v[keep] for name, v in cols.items()}
    cols["scale"] = np.array([scale * thin])
    return cols


def _book(
    rng: np.random.Generator,
    cust: m.Customers,
    tutors: m.Tutors,
    curves: DayCurves,
    start: int,
    end: int,
    scale: float,
) -> tuple[dict[str, np.ndarray], int]:
    """Bookings at `scale` times the customers' rates, and how many become past sessions."""
    cat = m.catalog().category[cust.main_subject]
    t0 = np.maximum(cust.signup + 2 * HOUR, start)
    t1 = np.minimum(cust.churn_at, end + 7 * DAY)
    n = rng.poisson(cust.rate / 7 * curves.weight(cat, t0, t1) * scale)
    who = np.repeat(np.arange(cust.n), n)
    t = curves.sample(rng, cat[who], t0[who], t1[who])
    keep = rng.random(len(who)) < m.engagement(cust, who, t)
    who, t = who[keep], t[keep]
    sched = local_start(rng, cust, who, t)
    ok = (sched >= t0[who]) & (sched < t1[who])
    who, sched = who[ok], sched[ok]
    k = len(who)
    use2 = (cust.second_subject[who] >= 0) & (rng.random(k) < 0.25)
    subject = np.where(use2, cust.second_subject[who], cust.main_subject[who])
    usual = np.where(use2, cust.primary2[who], cust.primary[who])
    fading = m.declining(cust, who, sched)
    switcher = fading & (cust.cause[who] == m.SWITCH)
    p_switch = np.where(
        switcher, 4 * cust.switch_p[who] + 0.3, cust.switch_p[who] * np.where(fading, 1.5, 1.0)
    )
    switch = rng.random(k) < np.minimum(p_switch, 0.85)
    lead = np.where(
        rng.random(k) < 0.5,
        rng.uniform(48, 240, k),  # recurring bookings
        1 + np.minimum(rng.gamma(1.2, 20, k), 14 * 24),
    )
    created = sched - (lead * HOUR).astype(np.int64) - rng.integers(0, HOUR, k)
    created = np.maximum(created, cust.signup[who] + rng.integers(60, HOUR, k))
    tutor, sched = match(rng, tutors, usual, subject, switch, sched, created, t0[who], t1[who])
    tutor[rng.random(k) < 0.015] = -1
    matched_at = np.minimum(created + 60 + rng.gamma(1.5, 300, k).astype(np.int64), sched - 600)
    keep = (created <= end) & (created < sched - 1800)
    past = keep & (tutor >= 0) & (sched < end) & (matched_at <= end)
    cols = dict(
        who=who,
        subject=subject,
        sched=sched,
        tutor=tutor,
        created=created,
        matched_at=matched_at,
        dur=rng.choice(DURATIONS, k, p=[0.15, 0.25, 0.5, 0.1]),
    )
    return {name: v[keep] for name, v in cols.items()}, int(past.sum())
