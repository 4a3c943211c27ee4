"""PostgreSQL's binary COPY format, built with numpy: fast bulk writes of column arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import psycopg
from psycopg import sql

from simulator.columns import UNSET, Cat, Column

PG_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z, where PostgreSQL's binary timestamps start
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
FIXED = {
    "bigint": ">i8",
    "integer": ">i4",
    "double precision": ">f8",
    "boolean": "?",
    "timestamp with time zone": ">i8",
}
CHUNK = 100_000


def _field(pgtype: str, values: Column) -> tuple[np.ndarray, np.ndarray]:
    """(length per row, -1 for NULL) and the concatenated payload bytes of one column."""
    if isinstance(values, Cat):
        raw = [v.encode() if v is not None else b"" for v in values.vocab]
        width = max(max(len(r) for r in raw), 1)
        table = np.zeros((len(raw), width), dtype=np.uint8)
        for i, r in enumerate(raw):
            table[i, : len(r)] = np.frombuffer(r, dtype=np.uint8)
        vlen = np.array(
            [len(r) if v is not None else -1 for r, v in zip(raw, values.vocab, strict=True)]
        )
        out = vlen[values.codes]
        return out, table[values.codes][np.arange(width)[None, :] < out[:, None]]
    if values.dtype == object or values.dtype.kind in "US":
        null = (
            np.equal(values, None)  # type: ignore[call-overload]  # numpy's stubs omit None
            if values.dtype == object
            else np.zeros(len(values), bool)
        )
        encoded = np.char.encode(values[~null].astype(str), "utf-8")
        width = max(encoded.dtype.itemsize, 1)
        lens = np.char.str_len(encoded) if len(encoded) else np.zeros(0, dtype=np.int64)
        mat = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(len(encoded), width)
        data = mat[np.arange(width)[None, :] < lens[:, None]]
    else:
        if values.dtype.kind not in "iub" and pgtype != "double precision":
            raise TypeError(f"{pgtype} column given {values.dtype} values")
        null = values == UNSET if values.dtype.kind == "i" else np.zeros(len(values), bool)
        v = values[~null]
        if pgtype == "timestamp with time zone":
            v = (v - PG_EPOCH) * 1_000_000
        data = np.ascontiguousarray(v.astype(FIXED[pgtype])).view(np.uint8)
        lens = np.full(len(v), np.dtype(FIXED[pgtype]).itemsize)
    out = np.full(len(values), -1, dtype=np.int64)
    out[~null] = lens
    return out, data


def encode_rows(types: list[str], columns: list[Column]) -> bytes:
    """Rows in PostgreSQL's binary COPY format (without header/trailer), built with numpy."""
    fields = [_field(t, c) for t, c in zip(types, columns, strict=True)]
    sizes = 2 + sum(4 + np.maximum(lens, 0) for lens, _ in fields)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    buf = np.zeros(int(sizes.sum()), dtype=np.uint8)
    count = np.array([len(fields)], dtype=">i2").view(np.uint8)
    buf[starts[:, None] + np.arange(2)] = count
    pos = starts + 2
    for lens, data in fields:
        buf[pos[:, None] + np.arange(4)] = lens.astype(">i4").view(np.uint8).reshape(-1, 4)
        has = lens >= 0
        n = lens[has]
        if len(n):
            first = np.repeat(pos[has] + 4 - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
            buf[first + np.arange(len(first))] = data
        pos = pos + 4 + np.maximum(lens, 0)
    return buf.tobytes()


def ident(table: str) -> sql.Composed:
    return sql.SQL(".").join(sql.Identifier(p) for p in table.split("."))


def column_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
        (table,),
    ).fetchall()
    return dict(rows)


def copy_table(
    conn: psycopg.Connection, table: str, cols: Mapping[str, Column], freeze: bool = False
) -> int:
    """Stream columns into `table` with binary COPY; returns the row count."""
    types = column_types(conn, table)
    columns = list(cols)
    stmt = sql.SQL("copy {} ({}) from stdin (format binary{})").format(
        ident(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", freeze" if freeze else ""),
    )
    n = len(cols[columns[0]])
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(COPY_HEADER)
        for lo in range(0, n, CHUNK):
            copy.write(
                encode_rows(
                    [types[c] for c in columns], [cols[c][lo : lo + CHUNK] for c in columns]
                )
            )
        copy.write(b"\xff\xff")
    return n
