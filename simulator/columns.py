"""How simulated rows are held: numpy columns, a NULL sentinel, coded text and shared vocabularies.

History and live mode build every table as a dict of equal-length numpy arrays; these are the
pieces both need to fill such columns the same way.
"""

from __future__ import annotations

import numpy as np

# fmt: off
FIRST_NAMES = np.array([
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mateo", "Amelia", "Benjamin", "Harper", "Ethan", "Evelyn", "Aiden", "Luna",
    "Oliver", "Camila", "Sebastian", "Aria", "Jackson", "Priya", "Wei", "Fatima", "Diego",
    "Chloe", "Kenji", "Zoe", "Omar"
])
LAST_NAMES = np.array([
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Nguyen", "Patel", "Kim", "Chen"
])
REASONS = np.array(["billing", "scheduling", "tutor_quality", "technical",
                    "cancellation_request", "other"])
BASE_REASON_P = [0.3, 0.25, 0.05, 0.2, 0.05, 0.15]
SUPPORT_REASON_P = [0.35, 0.2, 0.0, 0.3, 0.0, 0.15]
CHANNELS = np.array(["phone", "chat", "email"])
DURATIONS = np.array([30, 45, 60, 90])
# fmt: on
UNSET = np.iinfo(np.int64).min  # "NULL" in integer and time columns


class Cat:
    """A text column as small integer codes into a vocabulary (None in it means NULL): cheap to
    build, slice and COPY. Compares to a string elementwise; `np.asarray` gives the values."""

    def __init__(self, codes: np.ndarray, vocab: tuple[str | None, ...]) -> None:
        self.codes = np.asarray(codes, dtype=np.int8)
        self.vocab = tuple(vocab)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: np.ndarray | slice | int) -> Cat:
        return Cat(self.codes[index], self.vocab)

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.codes == (self.vocab.index(other) if other in self.vocab else -1)

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return ~(self == other)

    __hash__ = None  # type: ignore[assignment]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return np.array(self.vocab, dtype=object)[self.codes]


def ids_by(created: np.ndarray) -> np.ndarray:
    """Rails ids follow insertion order: id of each row when rows are numbered by creation."""
    ids = np.empty(len(created), dtype=np.int64)
    ids[np.argsort(created, kind="stable")] = np.arange(1, len(created) + 1)
    return ids


def names(rng: np.random.Generator, n: int, ids: np.ndarray, domain: str) -> tuple[np.ndarray, ...]:
    first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[rng.integers(0, len(LAST_NAMES), n)]
    full = np.char.add(np.char.add(first, " "), last).astype(object)
    email = [
        f"{f.lower()}.{la.lower()}{i}@{domain}" for f, la, i in zip(first, last, ids, strict=True)
    ]
    return full, np.array(email, dtype=object)


# One column of a generated table: plain values, or text as codes into a vocabulary.
Column = np.ndarray | Cat
