"""Load one table incrementally: read since the watermark, validate, upsert, advance.

Everything for one table happens in ONE warehouse transaction: the upserted rows, the
quarantined rows and the new watermark commit together or not at all, so a failed load leaves
the watermark where it was and re-running any window changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from orchestration.lib.ingest.tables import TableSpec
from orchestration.lib.ingest.validate import Batch, Rejected, split_frame, split_rows

if TYPE_CHECKING:  # polars loads with the first batch, not with the code location (~1-4 s)
    import polars as pl

DEFAULT_LOOKBACK = timedelta(minutes=5)
EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")

Fetcher = Callable[[datetime], Iterable[Any]]
"""Given the lower bound on updated_at, yields batches of source rows: lists of dicts (JSON
from an API, psycopg rows) or `SourceFrame`s read by COPY."""


@dataclass(frozen=True)
class IngestReport:
    table: str
    rows_read: int
    rows_upserted: int
    rows_quarantined: int
    watermark_before: datetime | None
    watermark_after: datetime | None
    seconds: float

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


INGEST_LOCK_SQL = "select pg_advisory_xact_lock_shared(hashtext('opsdash.ingest'))"
"""Held (shared) by every ingestion transaction from its first statement until it commits. A
dbt build starts by taking the same lock exclusively (`wait_for_ingestion`), so it waits for
the transactions in flight: rows stamped `_ingested_at` (their transaction's start) before the
build began are committed before it reads, and the incremental models need no wide margin."""


def hold_ingest_lock(conn: psycopg.Connection) -> None:
    """Mark this transaction as an ingestion in flight (see INGEST_LOCK_SQL); call it first,
    so the lock is held from the transaction's start time on."""
    conn.execute(INGEST_LOCK_SQL)


def lock_watermark(conn: psycopg.Connection, table: str) -> datetime | None:
    """Read the table's watermark and hold its row lock until commit (one loader at a time)."""
    conn.execute(
        "insert into raw.watermarks (table_name, watermark, rows_loaded) values (%s, %s, 0)"
        " on conflict (table_name) do nothing",
        (table, EPOCH),
    )
    row = conn.execute(
        "select watermark from raw.watermarks where table_name = %s for update", (table,)
    ).fetchone()
    wm = row[0] if row else None
    return None if wm == EPOCH else wm


SOURCE_TYPES: dict[str, set[str]] = {
    "int": {"int2", "int4", "int8"},
    "str": {"text", "varchar"},
    "literal": {"text", "varchar"},
    "bool": {"bool"},
    "datetime": {"timestamptz"},
}
"""Source column types the Arrow fast path reads as exactly the values psycopg would give."""


@dataclass(frozen=True)
class SourceFrame:
    """One batch read from the source database by COPY, typed like the raw table.

    `zone` is the source session's time zone: a quarantined row's payload shows its
    timestamps there, as the row-at-a-time loader (psycopg dict rows) stored them."""

    frame: pl.DataFrame
    zone: tzinfo

    def __len__(self) -> int:
        return self.frame.height


def _source_query(spec: TableSpec, since: datetime) -> str:
    """The source read with `since` bound client-side by psycopg (quoted as a literal, never
    formatted by hand): the ADBC driver streams a statement without parameters by binary COPY,
    one with parameters row by row."""
    query = sql.SQL("select {cols} from {table} where updated_at > {since}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns),
        table=sql.Identifier(spec.source),  # type: ignore[arg-type]
        since=sql.Literal(since),
    )
    return query.as_string()


def _fast_path_types(conn: psycopg.Connection, spec: TableSpec) -> bool:
    """True when every source column has the type the Arrow fast path expects for its field."""
    from orchestration.lib.ingest import vectorized as vec

    plan = vec.compile_contract(spec.model)
    query = sql.SQL("select {cols} from {table} limit 0").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns),
        table=sql.Identifier(spec.source),  # type: ignore[arg-type]
    )
    with conn.cursor() as cur:
        cur.execute(query)
        desc = cur.description or []
        names = {col.name: conn.adapters.types.get(col.type_code) for col in desc}
    kinds = {f.name: f.kind for f in plan.fields}
    for c in spec.columns:
        found = names.get(c)
        if found is None or found.name not in SOURCE_TYPES[kinds[c]]:
            return False
    return True


def _arrow_batches(
    source_url: str, query: str, schema: dict[str, pl.DataType]
) -> Iterator[pl.DataFrame]:
    """Record batches of the query, read by the ADBC PostgreSQL driver (binary COPY into Arrow
    in C: no Python object per row), cast to the raw table's types. The driver's low-level API:
    its DB-API module imports pandas (seconds per run process)."""
    import adbc_driver_manager
    import adbc_driver_postgresql
    import polars as pl
    import pyarrow as pa

    with (
        adbc_driver_postgresql.connect(source_url) as db,
        adbc_driver_manager.AdbcConnection(db) as conn,
        adbc_driver_manager.AdbcStatement(conn) as stmt,
    ):
        stmt.set_sql_query(query)
        stream, _count = stmt.execute_query()
        for record_batch in pa.RecordBatchReader.from_stream(stream):
            frame = pl.from_arrow(record_batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame.cast(schema)  # type: ignore[arg-type]


def source_fetcher(source_url: str, spec: TableSpec, batch_size: int = 20_000) -> Fetcher:
    """Stream a marketplace table by binary COPY into polars frames (`SourceFrame`s).

    Source columns of an unexpected type (the contract says integer, the source stores text, ...)
    fall back to a server-side cursor of psycopg rows (`batch_size` at a time), validated the
    same way. Rows come in no particular order: the whole read commits in one transaction and
    a key appears once in its source table, so the order changes nothing that is stored."""
    assert spec.source is not None

    def fetch(since: datetime) -> Iterator[SourceFrame | list[dict[str, Any]]]:
        from orchestration.lib.ingest import vectorized as vec

        plan = vec.compile_contract(spec.model)
        with psycopg.connect(source_url) as conn:
            conn.read_only = True
            zone = _session_zone(conn)
            if not _fast_path_types(conn, spec):
                yield from _cursor_rows(conn, spec, since, batch_size)
                return
        for frame in _arrow_batches(source_url, _source_query(spec, since), plan.schema):
            yield SourceFrame(frame, zone)

    return fetch


def _session_zone(conn: psycopg.Connection) -> tzinfo:
    name = conn.execute("select current_setting('TimeZone')").fetchone()[0]  # type: ignore[index]
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return UTC


def _cursor_rows(
    conn: psycopg.Connection, spec: TableSpec, since: datetime, batch_size: int
) -> Iterator[list[dict[str, Any]]]:
    query = sql.SQL("select {cols} from {table} where updated_at > %s").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns),
        table=sql.Identifier(spec.source),  # type: ignore[arg-type]
    )
    with conn.cursor(name=f"ingest_{spec.name}", row_factory=dict_row) as cur:
        cur.itersize = batch_size
        cur.execute(query, (since,))
        while rows := cur.fetchmany(batch_size):
            yield rows


def split_malformed(rows: Iterable[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """(objects, quarantined) from one fetched batch.

    An HTTP source (the support API) can send anything as an element of its `data`: an element
    that is not a JSON object is quarantined with a reason instead of failing the whole table's
    load on `.get`. Its payload is kept verbatim under `element`."""
    objects: list[dict[str, Any]] = []
    malformed: list[Rejected] = []
    for row in rows:
        if isinstance(row, dict):
            objects.append(row)
        else:
            reason = f"row: not a JSON object but a {_json_type(row)}"
            malformed.append(Rejected("None", reason, {"element": row}))
    return objects, malformed


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


ARROW_TYPES = {
    "smallint": "Int16",
    "integer": "Int32",
    "bigint": "Int64",
    "text": "String",
    "boolean": "Boolean",
    "timestamp with time zone": "Datetime",
}
"""polars type by raw column type: binary COPY takes exactly the column's own width."""


def _raw_types(conn: psycopg.Connection, spec: TableSpec) -> dict[str, pl.DataType]:
    """The polars type each loaded column must have for a binary COPY into the raw table."""
    import polars as pl

    rows = conn.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute"
        " where attrelid = %s::regclass and attnum > 0 and not attisdropped",
        (f"raw.{spec.name}",),
    ).fetchall()
    found: dict[str, str] = dict(rows)
    types: dict[str, pl.DataType] = {}
    for column in spec.columns:
        name = ARROW_TYPES.get(found.get(column, ""))
        if name is None:
            raise RuntimeError(
                f"raw.{spec.name}.{column} is of type {found.get(column)!r}, which the loader "
                f"cannot COPY (known: {', '.join(ARROW_TYPES)})"
            )
        types[column] = pl.Datetime("us", "UTC") if name == "Datetime" else getattr(pl, name)()
    return types


def _copy_binary(
    conn: psycopg.Connection, target: sql.Composable, columns: sql.Composable, frame: pl.DataFrame
) -> None:
    """COPY the frame in PostgreSQL's binary format, encoded from Arrow in Rust (pgpq): no
    text to parse on the server (parsing CSV timestamps cost as much as the whole insert)."""
    import pgpq

    table = frame.to_arrow()
    encoder = pgpq.ArrowToPostgresBinaryEncoder(table.schema)
    stmt = sql.SQL("copy {t} ({cols}) from stdin (format binary)").format(t=target, cols=columns)
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(encoder.write_header())
        for batch in table.to_batches(max_chunksize=65_536):
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())


def _newest_per_key(frame: pl.DataFrame, key: tuple[str, ...]) -> pl.DataFrame:
    """One row per key, the latest `updated_at` (ON CONFLICT may touch a row only once per
    statement), in key order so the index inserts land close together; done here rather than
    by a `distinct on` sort in the warehouse, which shares the machine's two cores."""
    import polars as pl

    keys = list(key)
    frame = frame.sort([*keys, "updated_at"], descending=[*(False for _ in keys), True])
    repeated = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in keys]).fill_null(False)
    if frame.select(repeated.any()).item():
        frame = frame.unique(subset=keys, keep="first", maintain_order=True)
    return frame


@dataclass(frozen=True)
class FirstLoad:
    """A first load into an empty raw table, its indexes and primary key deferred.

    Rows are appended with a plain INSERT (no index to maintain, no conflict to probe: about
    half the cost of the upsert here), then the primary key and the other indexes are built
    once, sorted. Within one read a source key appears once (one snapshot of a keyed table);
    should a source repeat a key anyway (an API paging while rows change), the newest row per
    key is kept before the key is rebuilt, exactly as the upsert would have kept it. All of it
    in the load's transaction: a failed load puts everything back."""

    key: str  # "name: definition" of the primary key, "" when the table has none
    indexes: list[str]

    def finish(self, conn: psycopg.Connection, spec: TableSpec) -> int:
        """Rebuild what was deferred; returns how many repeated keys were dropped."""
        dropped = 0
        if self.key:
            name, definition = self.key.split(": ", 1)
            add_key = sql.SQL("alter table {t} add constraint {c} {d}").format(
                t=sql.Identifier("raw", spec.name),
                c=sql.Identifier(name),
                d=sql.SQL(definition),  # catalog text (pg_get_constraintdef), no values
            )
            # Building the key is the check for repeated keys: only when it finds one is the
            # table searched for them (a full grouping pass, ~10% of a first load).
            try:
                with conn.transaction():  # a savepoint: the failed build leaves nothing behind
                    conn.execute(add_key)
            except psycopg.errors.UniqueViolation:
                dropped = _drop_repeated_keys(conn, spec)
                conn.execute(add_key)
        for statement in self.indexes:
            conn.execute(statement)  # catalog text (pg_get_indexdef), no values
        return dropped


def _first_load(conn: psycopg.Connection, spec: TableSpec) -> FirstLoad | None:
    """For a load into an empty raw table: drop its primary key and other non-unique indexes
    and say how to rebuild them; None when the table already holds rows (the upsert path)."""
    ident = sql.Identifier("raw", spec.name)
    probe = sql.SQL("select exists (select 1 from {t})").format(t=ident)
    if conn.execute(probe).fetchone() != (False,):
        return None
    regclass = f"raw.{spec.name}"
    pkey = conn.execute(
        "select conname, pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = %s::regclass and contype = 'p'",
        (regclass,),
    ).fetchone()
    found = conn.execute(
        "select i.relname, pg_get_indexdef(i.oid) from pg_index x"
        " join pg_class i on i.oid = x.indexrelid"
        " where x.indrelid = %s::regclass and not x.indisunique order by i.relname",
        (regclass,),
    ).fetchall()
    for name, _definition in found:
        conn.execute(sql.SQL("drop index {i}").format(i=sql.Identifier("raw", name)))
    if pkey:
        conn.execute(
            sql.SQL("alter table {t} drop constraint {c}").format(
                t=ident, c=sql.Identifier(pkey[0])
            )
        )
    return FirstLoad(f"{pkey[0]}: {pkey[1]}" if pkey else "", [d for _n, d in found])


def _drop_repeated_keys(conn: psycopg.Connection, spec: TableSpec) -> int:
    """Keep the newest row of any key loaded twice (the upsert's rule); usually finds none."""
    ident = sql.Identifier("raw", spec.name)
    key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key)
    repeated = sql.SQL("select exists (select 1 from {t} group by {k} having count(*) > 1)")
    if conn.execute(repeated.format(t=ident, k=key)).fetchone() != (True,):
        return 0
    cur = conn.execute(
        sql.SQL(
            "delete from {t} where ctid in (select ctid from (select ctid, row_number() over"
            " (partition by {k} order by updated_at desc) as n from {t}) ranked where n > 1)"
        ).format(t=ident, k=key)
    )
    return cur.rowcount


def _coalesce(batches: Iterable[Any], min_rows: int = 20_000) -> Generator[Any, None, None]:
    """Small pages (the support API sends 1,000 rows each) merged into batches of at least
    `min_rows`, so the fixed cost of validating and staging a batch is paid less often."""
    pending: list[Any] = []
    for batch in batches:
        if isinstance(batch, SourceFrame):
            if pending:
                yield pending
                pending = []
            yield batch
            continue
        pending.extend(batch)
        if len(pending) >= min_rows:
            yield pending
            pending = []
    if pending:
        yield pending


def _upsert(
    conn: psycopg.Connection,
    spec: TableSpec,
    frame: pl.DataFrame,
    types: dict[str, pl.DataType],
    first_load: bool = False,
) -> int:
    """Into an empty table whose key is deferred: COPY the rows straight in. Otherwise COPY
    into a temp table, then insert-or-update the rows whose updated_at moved forward. `types`:
    the raw table's (`_raw_types`)."""
    if not frame.height:
        return 0
    ident = sql.Identifier("raw", spec.name)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns)
    rows = _newest_per_key(frame.select(spec.columns), spec.key)
    rows = rows.cast(types)  # type: ignore[arg-type]
    if first_load:
        _copy_binary(conn, ident, cols, rows)
        return rows.height
    stage = sql.Identifier(f"_stage_{spec.name}")
    conn.execute(
        sql.SQL(
            "create temp table if not exists {stage} on commit drop as"
            " select {cols} from {t} with no data"
        ).format(stage=stage, cols=cols, t=ident)
    )
    conn.execute(sql.SQL("truncate {stage}").format(stage=stage))
    _copy_binary(conn, stage, cols, rows)
    non_key = [c for c in spec.columns if c not in spec.key]
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in non_key
    )
    stmt = sql.SQL(
        "insert into {t} ({cols}) select {cols} from {stage}"
        " on conflict ({key}) do update set {updates}, _ingested_at = now()"
        " where {t}.updated_at < excluded.updated_at"
    ).format(
        t=ident,
        cols=cols,
        stage=stage,
        updates=updates,
        key=sql.SQL(", ").join(sql.Identifier(c) for c in spec.key),
    )
    return conn.execute(stmt).rowcount


def _quarantine(
    conn: psycopg.Connection, spec: TableSpec, rejected: list[Rejected], run_id: str | None
) -> int:
    if not rejected:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "insert into raw.quarantine (table_name, source_key, reason, payload, payload_hash,"
            " run_id) values (%s, %s, %s, %s::jsonb, %s, %s)"
            " on conflict (table_name, source_key, payload_hash) do nothing",
            [
                (spec.name, r.source_key, r.reason, r.payload_json, r.payload_hash, run_id)
                for r in rejected
            ],
        )
    return len(rejected)


def _validate(spec: TableSpec, rows: Any, now: datetime) -> tuple[Batch, list[Rejected]]:
    """(the batch split by its contract, elements that were not even objects)."""
    if isinstance(rows, SourceFrame):
        return split_frame(spec, rows.frame, now, rows.zone), []
    objects, malformed = split_malformed(rows)
    return split_rows(spec, objects, now), malformed


def ingest_table(
    warehouse_url: str,
    spec: TableSpec,
    fetch: Fetcher,
    *,
    run_id: str | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    log: Callable[[str], None] = lambda _m: None,
) -> IngestReport:
    """One incremental cycle for one table, committed atomically."""
    started = time.monotonic()
    read = upserted = quarantined = 0
    with psycopg.connect(warehouse_url) as conn:
        hold_ingest_lock(conn)
        before = lock_watermark(conn, spec.name)
        cycle_start: datetime = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        since = (before - lookback) if before else EPOCH
        newest: datetime | None = None
        first = _first_load(conn, spec) if before is None else None
        batches = _coalesce(fetch(since))
        types: dict[str, pl.DataType] | None = None  # read with the first batch, not before
        try:
            for rows in batches:
                batch, malformed = _validate(spec, rows, cycle_start)
                read += len(rows)
                types = types or _raw_types(conn, spec)
                upserted += _upsert(conn, spec, batch.frame, types, first_load=first is not None)
                quarantined += _quarantine(conn, spec, malformed + batch.rejected, run_id)
                if batch.max_updated_at and (newest is None or batch.max_updated_at > newest):
                    newest = batch.max_updated_at
                log(f"{spec.name}: read {read:,} rows, {quarantined:,} quarantined")
        finally:
            # On an error too: a source read ahead by a thread stops before its client closes.
            batches.close()
        if first is not None:
            upserted -= first.finish(conn, spec)
        after = before
        if newest is not None:
            # Never past the cycle start: rows committed later with earlier stamps stay in reach.
            candidate = min(newest, cycle_start)
            after = max(candidate, before) if before else candidate
        conn.execute(
            "update raw.watermarks set watermark = %s, rows_loaded = rows_loaded + %s,"
            " updated_at = now() where table_name = %s",
            (after or EPOCH, upserted, spec.name),
        )
        conn.commit()
    return IngestReport(
        spec.name, read, upserted, quarantined, before, after, time.monotonic() - started
    )
