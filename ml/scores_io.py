"""Writing churn scores to `ml.churn_scores`: one COPY per scoring run.

Lines are assembled in COPY's text format in blocks and a writer thread feeds them to the
server while the next block is encoded, so a million customers take seconds, not minutes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from psycopg.copy import QueuedLibpqWriter

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

    from ml.registry import LoadedModel

COPY_BLOCK_ROWS = 50_000

DELETE_RUN_SQL = "delete from ml.churn_scores where scored_at = %s"
COPY_SQL = (
    "copy ml.churn_scores (customer_id, churn_probability, top_factors,"
    " scored_at, model_name, model_version) from stdin"
)


def write_churn_scores(
    conn: psycopg.Connection,
    probability: pd.Series,
    factors: list[list[dict]],
    scored_at: datetime,
    loaded: LoadedModel,
) -> int:
    """Replace the scores stamped `scored_at` (a rerun never duplicates) and COPY the new ones
    in, in the caller's transaction. Returns the number of rows written."""
    constant = "\t".join(copy_text(v) for v in (scored_at.isoformat(), loaded.name, loaded.version))
    ids = probability.index.tolist()
    values = probability.tolist()
    encode = json.JSONEncoder().encode
    with conn.cursor() as cur:
        cur.execute(DELETE_RUN_SQL, (scored_at,))
        with cur.copy(COPY_SQL, writer=QueuedLibpqWriter(cur)) as copy:
            for start in range(0, len(ids), COPY_BLOCK_ROWS):
                stop = start + COPY_BLOCK_ROWS
                copy.write(
                    "".join(
                        f"{cid}\t{p!r}\t{copy_text(encode(reasons))}\t{constant}\n"
                        for cid, p, reasons in zip(
                            ids[start:stop], values[start:stop], factors[start:stop], strict=True
                        )
                    )
                )
    return len(factors)


def copy_text(value: str) -> str:
    """Escape a value for COPY's text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value
