"""Which tutor a booking gets: one booking per tutor-hour, first come first served.

Shared by the history (every booking at once) and live mode (the requests pending in a tick).
"""

from __future__ import annotations

import numpy as np

from simulator import model as m
from simulator.model import DAY, HOUR

SHIFTS = (1, -1, 2, -2, 24, -24, 3, -3, 48, -48, 23, 25, -23, -25, 72, -72, 4, -4)  # hours


class _Slots:
    """Taken tutor-hours, as a bitmap over the hours the bookings can move to."""

    def __init__(self, n_tutors: int, first: int, last: int) -> None:
        self.h0 = first // HOUR - 100  # room for the +-72 h moves
        self.span = last // HOUR + 100 - self.h0
        self.busy = np.zeros(n_tutors * self.span, dtype=bool)

    def key(self, tutor: np.ndarray, at: np.ndarray) -> np.ndarray:
        h = at // HOUR - self.h0
        ok = (tutor >= 0) & (h >= 0) & (h < self.span)
        return np.where(ok, tutor * self.span + h, -1)

    def free(self, key: np.ndarray) -> np.ndarray:
        return (key >= 0) & ~self.busy[np.maximum(key, 0)]


def _first_come(key: np.ndarray, created: np.ndarray) -> np.ndarray:
    """True for the earliest-created row of each key: the booking that gets the slot."""
    order = np.lexsort((created, key))
    win = np.ones(len(key), dtype=bool)
    win[order[1:]] = key[order[1:]] != key[order[:-1]]
    return win


def match(
    rng: np.random.Generator,
    tutors: m.Tutors,
    usual: np.ndarray,
    subject: np.ndarray,
    switch: np.ndarray,
    sched: np.ndarray,
    created: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    booked: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A tutor per booking (-1: unfilled) and its final start, one booking per tutor-hour, first
    come first served. A customer whose slot is unavailable tries the usual tutor an hour or two
    (or a day) earlier or later, then anyone free who teaches the subject. `booked` holds the
    (tutor index, start) of sessions that already occupy tutor-hours."""
    tutor = np.full(len(sched), -1)
    if not len(sched):
        return tutor, sched
    cand = m.CandidateIndex(tutors)
    sched = sched.copy()
    slots = _Slots(tutors.n, int(sched.min()), int(sched.max()))
    if booked is not None:
        key = slots.key(*booked)
        slots.busy[key[key >= 0]] = True
    lost = np.arange(len(sched))
    for delta in (0, *SHIFTS, None, None, None, None, None, None):
        at = sched[lost] + (delta or 0) * HOUR
        if delta is None:
            how = m.weekday(at // DAY) * 24 + (at % DAY) // HOUR
            try_tutor = cand.pick(rng, subject[lost], how)
            ok = (at >= lo[lost]) & (at < hi[lost])
        else:
            try_tutor = usual[lost]
            ok = ~switch[lost] & (at >= lo[lost]) & (at < hi[lost]) & (at > created[lost] + HOUR)
        key = slots.key(try_tutor, at)
        ok &= slots.free(key)
        ok &= tutors.avail[np.maximum(try_tutor, 0), m.weekday(at // DAY), (at % DAY) // HOUR]
        j = np.flatnonzero(ok)
        j = j[_first_come(key[j], created[lost[j]])]
        sched[lost[j]] = at[j]
        tutor[lost[j]] = try_tutor[j]
        slots.busy[key[j]] = True
        lost = np.delete(lost, j)
    return tutor, sched
