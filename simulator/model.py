"""The latent marketplace: subjects, tutors, customers, demand seasonality and why customers churn.

Pure numpy and deterministic for a seed. `history.py` turns it into history rows and `live.py`
keeps it running; both draw session outcomes from the helpers at the bottom so that history and
live rows come from one model. Times are int64 seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import holidays
import numpy as np

DAY = 86_400
HOUR = 3_600

# fmt: off
# name, category, popularity weight, lowest and highest grade (13 = college / adult)
SUBJECTS: tuple[tuple[str, str, float, int, int], ...] = (
    ("Elementary Math", "math", 3.0, 1, 5), ("Middle School Math", "math", 3.0, 6, 8),
    ("Algebra I", "math", 4.0, 8, 10), ("Geometry", "math", 2.5, 9, 10),
    ("Algebra II", "math", 3.0, 10, 11), ("Pre-Calculus", "math", 2.5, 11, 12),
    ("Calculus", "math", 2.5, 11, 13), ("Statistics", "math", 1.5, 11, 13),
    ("Biology", "science", 2.0, 9, 10), ("Chemistry", "science", 2.5, 10, 11),
    ("Physics", "science", 2.0, 11, 12), ("Earth Science", "science", 0.8, 6, 9),
    ("AP Biology", "science", 1.0, 11, 12), ("AP Chemistry", "science", 1.0, 11, 12),
    ("AP Physics", "science", 1.0, 11, 12), ("Reading", "english", 2.5, 1, 6),
    ("Writing", "english", 2.0, 3, 10), ("Essay Writing", "english", 1.5, 9, 13),
    ("Literature", "english", 1.0, 9, 12), ("Grammar", "english", 0.8, 4, 9),
    ("ESL", "english", 1.2, 1, 13), ("SAT", "test_prep", 3.0, 10, 12),
    ("ACT", "test_prep", 2.0, 10, 12), ("PSAT", "test_prep", 0.8, 9, 11),
    ("AP Calculus Exam", "test_prep", 0.8, 11, 12), ("GRE", "test_prep", 0.7, 13, 13),
    ("LSAT", "test_prep", 0.4, 13, 13), ("MCAT", "test_prep", 0.4, 13, 13),
    ("Spanish", "languages", 2.0, 6, 13), ("French", "languages", 1.0, 6, 13),
    ("Mandarin", "languages", 0.7, 1, 13), ("German", "languages", 0.4, 9, 13),
    ("Japanese", "languages", 0.4, 9, 13), ("US History", "social_studies", 1.0, 8, 11),
    ("World History", "social_studies", 0.8, 9, 10), ("Economics", "social_studies", 0.6, 11, 13),
    ("Government", "social_studies", 0.5, 11, 12),
    ("Python Programming", "computer_science", 1.2, 6, 13),
    ("AP Computer Science", "computer_science", 0.8, 10, 12),
    ("Web Development", "computer_science", 0.6, 8, 13), ("Music Theory", "arts", 0.4, 4, 13),
    ("Piano", "arts", 0.5, 1, 13),
)
# summer factor, winter-break factor, finals bump, test-date bump: school subjects dip in summer,
# test prep peaks before SAT/ACT dates, languages and coding barely notice the school calendar.
CATEGORIES: dict[str, tuple[float, float, float, float]] = {
    "math": (0.45, 0.5, 1.2, 1.0), "science": (0.4, 0.5, 1.2, 1.0),
    "english": (0.55, 0.55, 1.1, 1.0), "test_prep": (0.85, 0.6, 1.0, 1.45),
    "languages": (0.9, 0.7, 1.05, 1.0), "social_studies": (0.4, 0.5, 1.2, 1.0),
    "computer_science": (1.05, 0.7, 1.0, 1.0), "arts": (0.95, 0.6, 1.0, 1.0),
}
CATEGORY_NAMES = tuple(CATEGORIES)
GOALS = ("improve_grades", "homework_help", "get_ahead", "raise_test_score",
         "language_fluency", "learn_new_skill")
CHANNELS = ("organic_search", "paid_search", "social", "referral", "school_partnership", "direct")
CHANNEL_P = np.array([0.28, 0.18, 0.14, 0.16, 0.12, 0.12])
CHANNEL_CHURN = np.array([1.0, 1.25, 1.5, 0.7, 0.8, 0.9])
CAUSES = ("bad_sessions", "tutor_switching", "support_contacts", "unmet_goals", "random")
BAD, SWITCH, SUPPORT, GOAL, RANDOM = range(5)
# US time zones (standard-time UTC offsets) and the share of customers in each.
TZ_OFFSETS = np.array([-5, -6, -7, -8])
TZ_P = np.array([0.47, 0.29, 0.07, 0.17])
DOW_FACTOR = np.array([1.10, 1.12, 1.10, 1.05, 0.72, 0.70, 1.00])  # Monday .. Sunday
WEEKDAY_HOURS = np.array([0, 0, 0, 0, 0, 0, 0.01, 0.03, 0.03, 0.03, 0.04, 0.04, 0.05, 0.08,
                          0.2, 0.6, 0.9, 1.0, 1.0, 0.95, 0.8, 0.45, 0.15, 0.03])
WEEKEND_HOURS = np.array([0, 0, 0, 0, 0, 0, 0, 0.05, 0.25, 0.55, 0.7, 0.7, 0.6, 0.6, 0.65,
                          0.65, 0.6, 0.55, 0.6, 0.65, 0.5, 0.25, 0.08, 0.01])
# fmt: on
SESSIONS_PER_CUSTOMER_DAY = 0.03  # the seed's 3,000 sessions/day for 100,000 customers
RATING_PROB = 0.72


@dataclass(frozen=True)
class Catalog:
    names: tuple[str, ...]
    category: np.ndarray  # category index per subject
    popularity: np.ndarray
    grade_lo: np.ndarray
    grade_hi: np.ndarray

    @property
    def n(self) -> int:
        return len(self.names)


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return Catalog(
        names=tuple(s[0] for s in SUBJECTS),
        category=np.array([CATEGORY_NAMES.index(s[1]) for s in SUBJECTS]),
        popularity=np.array([s[2] for s in SUBJECTS]),
        grade_lo=np.array([s[3] for s in SUBJECTS]),
        grade_hi=np.array([s[4] for s in SUBJECTS]),
    )


# ---------------------------------------------------------------- seasonality
def weekday(days: np.ndarray | int) -> np.ndarray:
    """Day of week (0 = Monday) of days since the epoch (1970-01-01 was a Thursday)."""
    return (np.asarray(days) + 3) % 7


@lru_cache(maxsize=64)
def _calendar(year: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Holidays, SAT/ACT test dates and the DST interval (as epoch days) of one year."""
    hol = [np.datetime64(d, "D").astype(int) for d in holidays.US(years=year)]
    thanksgiving = [d for d, n in holidays.US(years=year).items() if n.startswith("Thanksgiving")]
    hol += [np.datetime64(d, "D").astype(int) + 1 for d in thanksgiving]

    def nth_weekday(month: int, n: int, dow: int) -> int:
        first = np.datetime64(f"{year}-{month:02d}-01", "D").astype(int)
        return int(first + (dow - weekday(first)) % 7 + 7 * (n - 1))

    tests = [nth_weekday(m, 1, 5) for m in (3, 5, 6, 8, 10, 11, 12)]
    dst = (nth_weekday(3, 2, 6), nth_weekday(11, 1, 6))
    return np.array(hol), np.array(tests), dst


def day_factors(days: np.ndarray, category: int) -> np.ndarray:
    """Relative demand of whole days (epoch days) for one subject category: day of week, summer
    and winter breaks, spring break, finals, test dates and US public holidays."""
    days = np.asarray(days, dtype=np.int64)
    summer, winter, finals, test_bump = CATEGORIES[CATEGORY_NAMES[category]]
    years = days.astype("datetime64[D]").astype("datetime64[Y]")
    doy = days - years.astype("datetime64[D]").astype(np.int64)
    f = DOW_FACTOR[weekday(days)].copy()
    ramp = np.clip(np.minimum((doy - 158) / 12, (240 - doy) / 12), 0, 1)
    f *= 1 - (1 - summer) * ramp
    f[(doy >= 354) | (doy <= 1)] *= winter
    f[(doy >= 72) & (doy <= 95)] *= 1 - (1 - summer) * 0.25
    f[((doy >= 334) & (doy <= 351)) | ((doy >= 121) & (doy <= 160))] *= finals
    for year in np.unique(years.astype(np.int64) + 1970):
        hol, tests, _ = _calendar(int(year))
        f[np.isin(days, hol)] *= 0.4
        if test_bump != 1.0:
            for t in tests:
                f[(days >= t - 21) & (days < t)] *= test_bump
    return f


def dst_mask(days: np.ndarray) -> np.ndarray:
    """True on days when US daylight saving time applies."""
    days = np.asarray(days, dtype=np.int64)
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    out = np.zeros(days.shape, dtype=bool)
    for year in np.unique(years):
        lo, hi = _calendar(int(year))[2]
        out |= (years == year) & (days >= lo) & (days < hi)
    return out


def hour_profile(weekend: bool) -> np.ndarray:
    """Share of a day's sessions starting in each local hour (after-school peak on weekdays)."""
    p = WEEKEND_HOURS if weekend else WEEKDAY_HOURS
    return p / p.sum()


def utc_hour_profile(day: int) -> np.ndarray:
    """Share of one day's demand per UTC hour, mixing the US time zones (for live and bursts)."""
    weekend = bool(weekday(day) >= 5)
    local = hour_profile(weekend)
    dst = int(dst_mask(np.array([day]))[0])
    out = np.zeros(24)
    for off, share in zip(TZ_OFFSETS, TZ_P, strict=True):
        out += share * np.roll(local, -(off + dst))
    return out


# ---------------------------------------------------------------- tutors
@dataclass
class Tutors:
    quality: np.ndarray
    no_show_rate: np.ndarray
    hourly_rate_cents: np.ndarray
    hired_at: np.ndarray
    active: np.ndarray
    teach: np.ndarray  # bool [tutor, subject]
    avail: np.ndarray  # bool [tutor, weekday, utc hour]

    @property
    def n(self) -> int:
        return len(self.quality)


def tutor_count(scale: int) -> int:
    return max(20, scale // 40)


def no_show_rate(quality: np.ndarray) -> np.ndarray:
    return 0.008 + 0.12 * (1 - quality) ** 2


def draw_tutors(rng: np.random.Generator, n: int, start: int) -> Tutors:
    cat = catalog()
    quality = rng.beta(4.0, 2.0, n)
    teach = np.zeros((n, cat.n), dtype=bool)
    pop = cat.popularity * rng.lognormal(0, 0.35, cat.n)  # some subjects end up short of tutors
    k = rng.choice([1, 2, 3, 4], n, p=[0.15, 0.3, 0.35, 0.2])
    main = rng.choice(cat.n, n, p=pop / pop.sum())
    teach[np.arange(n), main] = True
    for j in range(1, 4):
        has = k > j
        same = cat.category[:, None] == cat.category[main[has]][None, :]
        w = (pop[:, None] * np.where(same, 4.0, 1.0)).T
        pick = (rng.random(has.sum())[:, None] > np.cumsum(w / w.sum(1, keepdims=True), 1)).sum(1)
        teach[np.flatnonzero(has), np.minimum(pick, cat.n - 1)] = True
    for s in np.flatnonzero(~teach.any(0)):  # every subject is taught by someone
        teach[rng.integers(n), s] = True
    avail = np.zeros((n, 7, 24), dtype=bool)
    offset = rng.choice(TZ_OFFSETS, n, p=TZ_P)
    n_days = rng.choice([3, 4, 5, 6, 7], n, p=[0.15, 0.25, 0.3, 0.2, 0.1])
    start_p = np.array(
        [0] * 7 + [0.02] + [0.04] * 6 + [0.1, 0.14, 0.14, 0.1, 0.06, 0.03] + [0.01] * 4
    )
    for d in range(7):
        on = rng.random(n) < n_days / 7
        for first in (True, False):  # an evening block, and on some days a daytime one too
            sel_day = on if first else on & (rng.random(n) < 0.25)
            local = (
                rng.choice(24, n, p=start_p / start_p.sum()) if first else rng.integers(8, 13, n)
            )
            length = rng.integers(4, 9, n) if first else rng.integers(2, 5, n)
            for h in range(7):
                sel = sel_day & (h < length) & (local + h < 24)
                utc = local[sel] + h - offset[sel]
                avail[np.flatnonzero(sel), (d + utc // 24) % 7, utc % 24] = True
    active = rng.random(n) > 0.04
    avail[~active] = False
    return Tutors(
        quality=quality,
        no_show_rate=no_show_rate(quality),
        hourly_rate_cents=(rng.normal(3500, 900, n).clip(1500, 9000) // 100 * 100).astype(int),
        hired_at=start - rng.integers(30, 900, n) * DAY - rng.integers(0, DAY, n),
        active=active,
        teach=teach,
        avail=avail,
    )


class CandidateIndex:
    """Tutors who teach subject s and are available at hour-of-week w, keyed s * 168 + w."""

    def __init__(self, tutors: Tutors) -> None:
        t, s = np.nonzero(tutors.teach)
        hw = tutors.avail.reshape(tutors.n, 168)[t]
        rows, how = np.nonzero(hw)
        keys = s[rows] * 168 + how
        order = np.argsort(keys, kind="stable")
        self.tutor = t[rows][order]
        self.count = np.bincount(keys, minlength=len(catalog().names) * 168)
        self.offset = np.concatenate([[0], np.cumsum(self.count)[:-1]])

    def pick(self, rng: np.random.Generator, subject: np.ndarray, how: np.ndarray) -> np.ndarray:
        """A random available tutor per (subject, hour of week), -1 where nobody is."""
        key = subject * 168 + how
        cnt = self.count[key]
        idx = self.offset[key] + (rng.random(len(key)) * np.maximum(cnt, 1)).astype(np.int64)
        return np.where(cnt > 0, self.tutor[np.minimum(idx, len(self.tutor) - 1)], -1)


# ---------------------------------------------------------------- customers and churn
@dataclass
class Customers:
    signup: np.ndarray
    channel: np.ndarray
    grade: np.ndarray
    goal: np.ndarray
    tz_offset: np.ndarray  # standard-time UTC offset in hours
    pref_hour: np.ndarray  # preferred local start hour
    rate: np.ndarray  # sessions per week while engaged (before calibration)
    main_subject: np.ndarray
    second_subject: np.ndarray  # -1 for none
    primary: np.ndarray  # usual tutor for the main subject
    primary2: np.ndarray  # usual tutor for the second subject, -1 for none
    switch_p: np.ndarray  # chance a booking goes to a new tutor on purpose
    support_p: np.ndarray  # propensity to contact support (1 = average)
    learning: np.ndarray  # how fast sessions move the customer toward the goal
    churn_at: np.ndarray  # latent churn time (may lie far in the future)
    cause: np.ndarray  # index into CAUSES
    decline_days: np.ndarray  # how long before churning the customer fades

    @property
    def n(self) -> int:
        return len(self.signup)


def _pick_primary(
    rng: np.random.Generator, tutors: Tutors, subject: np.ndarray, utc_hour: np.ndarray
) -> np.ndarray:
    """A usual tutor per customer: one teaching the subject, likelier if often free then."""
    out = np.full(len(subject), -1)
    by_hour = tutors.avail.sum(1) + 0.05 * tutors.active[:, None]  # [tutor, utc hour]
    for s in np.unique(subject[subject >= 0]):
        who = np.flatnonzero(subject == s)
        cand = np.flatnonzero(tutors.teach[:, s] & tutors.active)
        if len(cand) == 0:
            cand = np.flatnonzero(tutors.teach[:, s])
        cw = np.cumsum(by_hour[cand], 0) + 1e-9 * np.arange(1, len(cand) + 1)[:, None]
        target = rng.random(len(who)) * cw[-1, utc_hour[who]]
        for h in np.unique(utc_hour[who]):
            i = utc_hour[who] == h
            pick = np.searchsorted(cw[:, h], target[i], side="left")
            out[who[i]] = cand[np.minimum(pick, len(cand) - 1)]
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def hazards(c: Customers, tutors: Tutors) -> np.ndarray:
    """Daily churn hazard per latent cause, shape [customer, cause] (competing risks)."""
    h = np.empty((c.n, len(CAUSES)))
    h[:, BAD] = 0.012 * _sigmoid((0.42 - tutors.quality[c.primary]) / 0.05)
    h[:, SWITCH] = 0.15 * c.switch_p**2
    h[:, SUPPORT] = 0.0008 * c.support_p**1.3
    h[:, GOAL] = 0.02 * (1 - c.learning) ** 4
    h[:, RANDOM] = 0.0005 * CHANNEL_CHURN[c.channel]
    return h


def draw_customers(rng: np.random.Generator, signup: np.ndarray, tutors: Tutors) -> Customers:
    """Customers who sign up at `signup`, with their latent traits and (future) churn."""
    cat = catalog()
    n = len(signup)
    main = rng.choice(cat.n, n, p=cat.popularity / cat.popularity.sum())
    has2 = rng.random(n) < 0.3
    second = np.where(has2, rng.choice(cat.n, n, p=cat.popularity / cat.popularity.sum()), -1)
    second[second == main] = -1
    tz = rng.choice(TZ_OFFSETS, n, p=TZ_P)
    pref = rng.choice(24, n, p=hour_profile(False))
    utc = (pref - tz) % 24
    category = cat.category[main]
    goal = np.select(
        [
            category == CATEGORY_NAMES.index("test_prep"),
            category == CATEGORY_NAMES.index("languages"),
            category >= CATEGORY_NAMES.index("computer_science"),
        ],
        [3, 4, 5],
        rng.choice(3, n, p=[0.5, 0.3, 0.2]),
    )
    c = Customers(
        signup=np.asarray(signup, dtype=np.int64),
        channel=rng.choice(len(CHANNELS), n, p=CHANNEL_P),
        grade=rng.integers(cat.grade_lo[main], cat.grade_hi[main] + 1),
        goal=goal,
        tz_offset=tz,
        pref_hour=pref,
        rate=np.where(rng.random(n) < 0.07, 0.0, rng.gamma(2.0, 0.5, n)),
        main_subject=main,
        second_subject=second,
        primary=_pick_primary(rng, tutors, main, utc),
        primary2=_pick_primary(rng, tutors, second, utc),
        switch_p=rng.beta(0.6, 8.0, n),
        support_p=rng.gamma(0.7, 1 / 0.7, n),
        learning=rng.beta(2.5, 1.8, n),
        churn_at=np.zeros(n, dtype=np.int64),
        cause=np.zeros(n, dtype=np.int64),
        decline_days=rng.uniform(30, 70, n),
    )
    h = hazards(c, tutors)
    total = h.sum(1)
    e = rng.exponential(1.0, n)
    # new customers are twice as fragile in their first 30 days
    days = np.where(e / (2 * total) <= 30, e / (2 * total), e / total - 30)
    c.churn_at = c.signup + (np.minimum(days, 36_500) * DAY).astype(np.int64)
    cum = np.cumsum(h / total[:, None], 1)
    c.cause = np.minimum((rng.random(n)[:, None] > cum).sum(1), len(CAUSES) - 1)
    return c


def cancel_delay_days(customer_id: np.ndarray) -> np.ndarray:
    """Days between churning and the account being cancelled (3..29, fixed per customer; live
    mode computes the same in SQL)."""
    return 3 + (np.asarray(customer_id, dtype=np.int64) * 7919) % 27


def declining(c: Customers, who: np.ndarray, at: np.ndarray) -> np.ndarray:
    """True where customer `who` is in the fading weeks before their churn at time `at`."""
    left = (c.churn_at[who] - at) / DAY
    return (left > 0) & (left < c.decline_days[who])


def engagement(c: Customers, who: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Multiplier on booking rate: 1 normally, fading to 0.1 just before churn, 0 after."""
    left = (c.churn_at[who] - at) / DAY
    fade = 0.1 + 0.9 * np.clip(left / c.decline_days[who], 0, 1) ** 2
    return np.where(left > 0, fade, 0.0)


# ---------------------------------------------------------------- session outcomes
def cancel_probs(quality: np.ndarray, fading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chance a booked session is cancelled by the customer and by the tutor before it starts."""
    return 0.055 * np.where(fading, 2.5, 1.0), 0.01 + 0.05 * (1 - quality)


def attendance(
    rng: np.random.Generator, tutor_no_show: np.ndarray, fading: np.ndarray, bad: np.ndarray
) -> np.ndarray:
    """0 = held, 1 = tutor no-show, 2 = customer no-show."""
    u = rng.random(len(tutor_no_show))
    p_tutor = tutor_no_show * np.where(fading & bad, 2.0, 1.0)
    p_cust = 0.025 * np.where(fading, 2.0, 1.0)
    return np.where(u < p_tutor, 1, np.where(u < p_tutor + p_cust, 2, 0))


def ratings(
    rng: np.random.Generator, quality: np.ndarray, fading: np.ndarray, bad: np.ndarray
) -> np.ndarray:
    """Star ratings 1..5: good tutors get fives, unhappy customers mark sessions down."""
    mu = 1.8 + 3.6 * quality - np.where(fading & bad, 1.3, np.where(fading, 0.8, 0.0))
    return np.clip(np.rint(mu + rng.normal(0, 0.7, len(mu))), 1, 5).astype(np.int64)


def goal_progress(learning: np.ndarray, completed: np.ndarray) -> np.ndarray:
    """Goal progress (0..100 %) after `completed` sessions."""
    return np.clip(np.rint(100 * (1 - np.exp(-(learning**2) * completed / 4))), 0, 100).astype(int)
