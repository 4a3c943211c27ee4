"""CSV exports that a spreadsheet cannot turn into formulas, and their audit row.

A cell starting with `=`, `+`, `-`, `@` (or a tab / carriage return, which some spreadsheets
skip before looking) is read as a formula by Excel, LibreOffice and Google Sheets (CSV
injection, OWASP). Such cells get a leading apostrophe, which the spreadsheet shows as text.
Numbers are left alone: a negative number is data, not a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from opsdash_core import accounts

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """The cell as a spreadsheet should see it: text that starts like a formula is quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV (with BOM, so Excel reads accents) of neutralized cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralize(c) for c in columns])
    for row in rows:
        writer.writerow(["" if v is None else neutralize(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode()


def audit_export(
    conn: psycopg.Connection, username: str, what: str, rows: int, **filters: object
) -> None:
    """One audit row per download: who exported what, how many rows, with which filters."""
    with conn.transaction():
        accounts.audit(conn, username, "export_csv", export=what, rows=rows, **filters)


def download_button(
    what: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], **filters: object
) -> None:
    """A "Download CSV" button for operators and admins; the download is audited.

    The role is checked when the button is drawn and again in the click callback (on the
    server, before the audit row), so a viewer neither sees it nor gets an export audited as
    theirs.
    """
    import streamlit as st

    from app_streamlit import session

    user = session.current_user()
    if user is None or not accounts.has_role(user, "operator"):
        return

    def on_click() -> None:
        current = session.current_user()
        if current is None or not accounts.has_role(current, "operator"):
            return
        with session.warehouse_conn() as conn:
            audit_export(conn, current.username, what, len(rows), **filters)

    st.download_button(
        "Download CSV",
        data=to_csv(columns, rows),
        file_name=f"opsdash-{what}.csv",
        mime="text/csv",
        key=f"export_{what}",
        on_click=on_click,
        icon=":material/download:",
    )
