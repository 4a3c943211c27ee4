"""The latent marketplace model: deterministic, seasonal, with churn that can be learned."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from simulator import generator as g
from simulator import model as m
from simulator.model import DAY

END = 1_790_000_000 // 60 * 60  # a fixed Monday in September 2026, 14:13 UTC


@lru_cache(maxsize=4)
def history(scale: int, days: int, seed: int = 42) -> g.History:
    return g.simulate(seed, scale, days, END)


def _day(iso: str) -> int:
    return int(np.datetime64(iso, "D").astype(np.int64))


def test_same_seed_same_history_and_other_seed_differs() -> None:
    a, b = g.simulate(7, 1500, 45, END), g.simulate(7, 1500, 45, END)
    for table, cols in a.tables.items():
        for name, values in cols.items():
            assert np.array_equal(values, b.tables[table][name]), f"{table}.{name}"
    c = g.simulate(8, 1500, 45, END)
    assert not np.array_equal(
        a.tables["tutoring_sessions"]["scheduled_at"][:50],
        c.tables["tutoring_sessions"]["scheduled_at"][:50],
    )


def test_catalog_has_dozens_of_subjects_in_categories() -> None:
    cat = m.catalog()
    assert 35 <= cat.n <= 50
    assert len(np.unique(cat.category)) >= 6
    assert len(set(cat.names)) == cat.n


@pytest.mark.parametrize("category", ["math", "science", "social_studies"])
def test_school_subjects_dip_in_summer_and_winter_break(category: str) -> None:
    c = m.CATEGORY_NAMES.index(category)
    school = m.day_factors(np.arange(_day("2025-10-06"), _day("2025-10-20")), c).mean()
    summer = m.day_factors(np.arange(_day("2025-07-07"), _day("2025-07-21")), c).mean()
    winter = m.day_factors(np.arange(_day("2025-12-22"), _day("2026-01-01")), c).mean()
    assert summer < 0.6 * school
    assert winter < 0.7 * school


def test_languages_barely_notice_summer_and_test_prep_peaks_before_sat() -> None:
    lang = m.CATEGORY_NAMES.index("languages")
    july = m.day_factors(np.arange(_day("2025-07-07"), _day("2025-07-21")), lang).mean()
    october = m.day_factors(np.arange(_day("2025-10-13"), _day("2025-10-27")), lang).mean()
    assert july > 0.8 * october
    prep = m.CATEGORY_NAMES.index("test_prep")
    before_sat = m.day_factors(np.arange(_day("2025-09-15"), _day("2025-10-04")), prep).mean()
    after_sat = m.day_factors(np.arange(_day("2025-10-06"), _day("2025-10-20")), prep).mean()
    assert before_sat > 1.15 * after_sat


def test_holidays_and_weekends_are_quieter() -> None:
    math = m.CATEGORY_NAMES.index("math")
    thanksgiving, week_before = _day("2025-11-27"), _day("2025-11-20")
    f = m.day_factors(np.array([thanksgiving, week_before]), math)
    assert f[0] < 0.6 * f[1]
    week = m.day_factors(np.arange(_day("2025-10-06"), _day("2025-10-13")), math)  # Mon..Sun
    assert week[5] < week[1]  # Saturday < Tuesday


def test_after_school_peak_in_local_and_utc_hours() -> None:
    weekday = m.hour_profile(False)
    assert 15 <= int(np.argmax(weekday)) <= 20
    assert weekday[15:21].sum() > 0.6
    utc = m.utc_hour_profile(_day("2025-10-07"))
    assert np.isclose(utc.sum(), 1.0)
    evening_us = np.r_[utc[19:24], utc[0:3]].sum()
    assert evening_us > 0.55
    assert utc[8:12].sum() < 0.02


def test_dst_applies_in_summer_only() -> None:
    days = np.array(
        [_day("2025-07-01"), _day("2025-12-01"), _day("2025-03-10"), _day("2025-03-08")]
    )
    assert m.dst_mask(days).tolist() == [True, False, True, False]


def test_ratios_of_a_mid_size_marketplace() -> None:
    h = history(20_000, 120)
    s = h.tables["tutoring_sessions"]
    past = s["scheduled_at"] < END
    assert past.sum() / 120 == pytest.approx(0.03 * 20_000, rel=0.05)
    assert h.rows("tutors") == m.tutor_count(20_000) == 500
    status = {k: (s["status"] == k).mean() for k in ("completed", "cancelled", "no_show")}
    assert status["completed"] > 0.75
    assert 0.05 < status["cancelled"] < 0.15
    assert 0.02 < status["no_show"] < 0.08
    scheduled = s["status"] == "scheduled"
    assert (s["scheduled_at"][scheduled] > END - 2 * 3600).all()
    assert (s["scheduled_at"][s["status"] == "completed"] < END).all()
    r = h.tables["session_requests"]
    assert 0.02 < (r["status"] == "unfilled").mean() < 0.15
    assert set(np.unique(r["status"])) <= {"pending", "matched", "unfilled", "cancelled"}
    assert set(np.unique(s["duration_minutes"])) <= {30, 45, 60, 90}
    calls = h.tables["support.inbound_calls"]
    assert set(np.unique(calls["reason_code"])) == set(g.REASONS)
    assert set(np.unique(calls["channel"])) == {"phone", "chat", "email"}


def test_ratings_are_one_to_five_and_follow_tutor_quality() -> None:
    h = history(20_000, 120)
    s = h.tables["tutoring_sessions"]
    rated = s["rating"] != g.UNSET
    assert set(np.unique(s["rating"][rated])) <= {1, 2, 3, 4, 5}
    assert (s["status"][rated] == "completed").all()
    assert 3.8 < s["rating"][rated].mean() < 4.5
    q = dict(
        zip(
            h.tables["truth.tutor_quality"]["tutor_id"],
            h.tables["truth.tutor_quality"]["quality"],
            strict=True,
        )
    )
    quality = np.array([q[t] for t in s["tutor_id"][rated]])
    low, high = quality < np.quantile(quality, 0.2), quality > np.quantile(quality, 0.8)
    assert s["rating"][rated][low].mean() < s["rating"][rated][high].mean() - 0.7


def test_rails_invariants() -> None:
    h = history(5_000, 60)
    for table, cols in h.tables.items():
        if "updated_at" in cols:
            assert (cols["updated_at"] >= cols["created_at"]).all(), table
            assert (cols["updated_at"] <= END).all(), table
        if "id" in cols:
            assert np.array_equal(np.sort(cols["id"]), np.arange(1, len(cols["id"]) + 1)), table
    s, r = h.tables["tutoring_sessions"], h.tables["session_requests"]
    by_id = dict(zip(r["id"], r["tutoring_session_id"], strict=True))
    assert all(by_id[req] == ses for req, ses in zip(s["session_request_id"], s["id"], strict=True))
    assert (r["status"][r["tutoring_session_id"] != g.UNSET] == "matched").all()
    assert h.rows("truth.customer_outcomes") == h.rows("customers")
    avail = h.tables["tutor_availabilities"]
    assert (
        (avail["start_hour"] >= 0)
        & (avail["start_hour"] < avail["end_hour"])
        & (avail["end_hour"] <= 24)
    ).all()
    per_tutor = np.bincount(h.tables["tutor_subjects"]["tutor_id"])[1:]
    assert per_tutor.min() >= 1
    assert per_tutor.max() <= 4


def test_churners_fade_before_they_churn() -> None:
    h = history(20_000, 120)
    o, s = h.tables["truth.customer_outcomes"], h.tables["tutoring_sessions"]
    start = END - 120 * DAY
    churned_at = o["churned_at"]
    window = o["churned"] & (churned_at > start + 70 * DAY) & (churned_at < END)
    who = o["customer_id"][window]
    at = churned_at[window]
    pos = np.searchsorted(who, s["customer_id"])
    mine = (pos < len(who)) & (who[np.minimum(pos, len(who) - 1)] == s["customer_id"])
    before = (at[pos[mine]] - s["scheduled_at"][mine]) / DAY
    late, early = ((before > 0) & (before <= 30)).sum(), ((before > 30) & (before <= 60)).sum()
    assert late < 0.7 * early
    assert ((before < 0) & (s["created_at"][mine] > at[pos[mine]])).sum() == 0
    rate = o["churned"][(churned_at == g.UNSET) | (churned_at > END)].mean()
    assert 0.15 < rate < 0.30


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    n1 = y.sum()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))


def test_a_simple_rule_score_predicts_churn() -> None:
    """Recency, frequency, ratings, calls, tutor switching and goal progress carry the signal."""
    h = history(20_000, 120)
    cu, o = h.tables["customers"], h.tables["truth.customer_outcomes"]
    s, c = h.tables["tutoring_sessions"], h.tables["support.inbound_calls"]
    n = len(cu["id"])
    alive = (o["churned_at"] == g.UNSET) | (o["churned_at"] > END)
    pop = alive & (cu["status"] == "active") & (cu["signed_up_at"] < END - 14 * DAY)
    cid, at = s["customer_id"] - 1, s["scheduled_at"]
    past = at < END
    last = np.full(n, END - 120 * DAY)
    np.maximum.at(last, cid[past], at[past])
    recency = (END - np.maximum(last, cu["signed_up_at"])) / DAY
    freq = np.bincount(cid[past & (at >= END - 30 * DAY)], minlength=n)
    rated = past & (s["rating"] != g.UNSET) & (at >= END - 60 * DAY)
    total = np.bincount(cid[rated], weights=s["rating"][rated], minlength=n)
    count = np.bincount(cid[rated], minlength=n)
    rating = np.where(count > 0, total / np.maximum(count, 1), 4.2)
    calls = np.bincount(c["customer_id"][c["called_at"] >= END - 30 * DAY] - 1, minlength=n)
    recent = past & (at >= END - 60 * DAY)
    pairs = np.unique(np.stack([cid[recent], s["tutor_id"][recent]]), axis=1)
    switching = (np.bincount(pairs[0], minlength=n) - 1).clip(0) / np.maximum(
        np.bincount(cid[recent], minlength=n), 1
    )

    def z(x: np.ndarray) -> np.ndarray:
        x = x[pop].astype(float)
        return (x - x.mean()) / (x.std() + 1e-9)

    score = (
        0.5 * z(recency)
        - 0.5 * z(freq)
        - z(rating)
        + z(calls)
        + 0.5 * z(switching)
        - z(cu["goal_progress_pct"])
    )
    assert _auc(score, o["churned"][pop]) >= 0.70


def test_binary_copy_rows_layout() -> None:
    out = g.encode_rows(
        ["bigint", "text", "integer", "timestamp with time zone", "boolean"],
        [
            np.array([1]),
            np.array(["ab"], dtype=object),
            np.array([g.UNSET]),
            np.array([g.PG_EPOCH + 1]),
            np.array([True]),
        ],
    )
    assert out == (
        b"\x00\x05"
        + b"\x00\x00\x00\x08"
        + (1).to_bytes(8, "big")
        + b"\x00\x00\x00\x02ab"
        + b"\xff\xff\xff\xff"
        + b"\x00\x00\x00\x08"
        + (1_000_000).to_bytes(8, "big")
        + b"\x00\x00\x00\x01\x01"
    )


def test_binary_copy_handles_nulls_and_unicode_text() -> None:
    out = g.encode_rows(["text"], [np.array([None, "é", ""], dtype=object)])
    assert out == (
        b"\x00\x01\xff\xff\xff\xff"
        + b"\x00\x01\x00\x00\x00\x02\xc3\xa9"
        + b"\x00\x01\x00\x00\x00\x00"
    )
