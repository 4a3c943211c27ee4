"""The suites as data: coverage, naming, severities, and derivation from the row contracts --
without a database and without importing Great Expectations."""

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import pytest

from data_checks import BY_NAME, SUITES, Severity, suites_for
from data_checks.contract_rules import column_types, contract_columns
from data_checks.expectations import FUTURE, Expect
from data_checks.integrity import References
from data_checks.quarantine import QuarantineRate
from data_checks.raw_suites import raw_suites
from data_checks.suite_types import Bounds, LoadRun, NewRows, ValidationContext
from data_checks.suites import RAW_TABLES
from data_checks.trends import span
from opsdash_core import contracts
from orchestration.lib.ingest.tables import BY_NAME as TABLES


def test_every_raw_table_has_a_blocking_batch_check_and_quarantine_check() -> None:
    assert set(RAW_TABLES) == set(TABLES)
    for table in RAW_TABLES:
        checks = {s.check: s for s in suites_for(("raw", table))}
        assert {"valid_batch", "quarantine_rate"} <= set(checks)
        assert checks["valid_batch"].blocking
        assert isinstance(checks["valid_batch"].window, NewRows)
        assert checks["quarantine_rate"].blocking
        assert isinstance(checks["quarantine_rate"].window, LoadRun)
        assert checks["quarantine_rate"].relation == ("raw", "quarantine")
        if "trends" in checks:
            assert checks["trends"].severity is Severity.WARN
            assert not checks["trends"].blocking


def test_names_are_unique_and_usable_as_dagster_check_names() -> None:
    assert len(BY_NAME) == len(SUITES)
    keys = [(s.asset, s.check) for s in SUITES]
    assert len(set(keys)) == len(keys)
    for suite in SUITES:
        assert suite.check.isidentifier()
        labels = [spec.label for spec in suite.specs]
        assert len(set(labels)) == len(labels), suite.name
        assert suite.description


def _expect(suite_name: str, type_name: str, column: str | None) -> Expect:
    (spec,) = [
        s
        for s in BY_NAME[suite_name].specs
        if isinstance(s, Expect) and s.type_name == type_name and s.column == column
    ]
    return spec


def test_raw_schemas_are_the_ingested_columns_with_the_warehouse_types() -> None:
    for table, spec in TABLES.items():
        types = column_types(spec.model)
        assert list(types) == [*spec.columns, "_ingested_at"], table
        schema = _expect(f"raw_{table}__valid_batch", "ExpectTableColumnsToMatchSet", None)
        assert schema.args["column_set"] == list(types)
    sessions = column_types(contracts.Session)
    assert sessions["id"] == sessions["tutor_id"] == sessions["session_request_id"] == "BIGINT"
    assert sessions["duration_minutes"] == "INTEGER"
    assert sessions["status"] == "TEXT"
    assert sessions["is_first_session"] == "BOOLEAN"
    assert sessions["scheduled_at"] == sessions["_ingested_at"] == "TIMESTAMP WITH TIME ZONE"


def test_nullability_enumerations_and_ranges_come_from_the_contract() -> None:
    cols = {c.name: c for c in contract_columns(contracts.Session)}
    assert not cols["tutor_id"].nullable
    assert cols["rating"].nullable
    assert cols["cancelled_by"].values == get_args(contracts.Party)
    assert (cols["duration_minutes"].low, cols["duration_minutes"].high) == (1, 480)  # gt=0
    labels = {s.label for s in BY_NAME["raw_sessions__valid_batch"].specs}
    assert "tutor_id is not null" in labels
    assert "rating is not null" not in labels
    assert "rating in [1, 5]" in labels
    assert "duration_minutes in [1, 480]" in labels
    assert "updated_at >= created_at" in labels
    status = _expect("raw_sessions__valid_batch", "ExpectColumnValuesToBeInSet", "status")
    assert status.args["value_set"] == list(get_args(contracts.SessionStatus))
    for table, model in contracts.RAW_CONTRACTS.items():
        for col in contract_columns(model):
            if col.values is not None:
                found = _expect(
                    f"raw_{table}__valid_batch", "ExpectColumnValuesToBeInSet", col.name
                )
                assert tuple(found.args["value_set"]) == col.values


def test_a_new_enum_value_in_the_contract_reaches_the_suite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The row contract is the only place to edit: widen a Literal and the suite follows."""

    class WidenedSession(contracts.Session):
        status: Literal["scheduled", "completed", "cancelled", "no_show", "rescheduled"]  # type: ignore[assignment]

    monkeypatch.setitem(contracts.RAW_CONTRACTS, "sessions", WidenedSession)
    (batch,) = [s for s in raw_suites("sessions") if s.check == "valid_batch"]
    (status,) = [
        s for s in batch.specs if isinstance(s, Expect) and s.label.startswith("status in")
    ]
    assert status.args["value_set"][-1] == "rescheduled"
    built = _expect("raw_sessions__valid_batch", "ExpectColumnValuesToBeInSet", "status")
    assert "rescheduled" not in built.args["value_set"]


def test_no_expectation_is_stated_twice_in_a_suite() -> None:
    """Contract-derived and hand-written rules never overlap (e.g. a range written again)."""
    for suite in SUITES:
        seen = [
            (s.type_name, s.column, repr(sorted(s.args.items())), s.where)
            for s in suite.specs
            if isinstance(s, Expect)
        ]
        assert len(seen) == len(set(seen)), suite.name


def test_unknown_tutors_are_judged_strictly_and_other_references_once_loaded() -> None:
    refs = {
        s.column: s for s in BY_NAME["raw_sessions__valid_batch"].specs if isinstance(s, References)
    }
    assert refs["tutor_id"].judged_after_load_of is None
    assert refs["customer_id"].judged_after_load_of == "customers"
    assert refs["subject_id"].judged_after_load_of == "subjects"


def test_quarantine_allowance_and_rate() -> None:
    suite = BY_NAME["raw_sessions__quarantine_rate"]
    (spec,) = suite.specs
    assert isinstance(spec, QuarantineRate)
    assert spec.label == "rows quarantined by the load <= max(2, 1% of rows read)"
    assert spec.observe(5, {"rows_read": 100}) == {"quarantined": 5, "rows_read": 100, "rate": 0.05}
    assert spec.observe(0, {"rows_read": 0}) == {"quarantined": 0, "rows_read": 0, "rate": None}


def test_future_resolves_against_the_validation_time() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ctx = ValidationContext(BY_NAME["raw_sessions__valid_batch"], now, Bounds())
    assert FUTURE.resolve(ctx) == now + timedelta(minutes=5)
    expect = Expect("ExpectColumnValuesToBeBetween", {"column": "c", "max_value": FUTURE})
    assert expect.column == "c"
    assert "now + 5 min" in expect.label


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(days=3), "3 d"),
        (timedelta(hours=2), "2 h"),
        (timedelta(minutes=90), "90 min"),
    ],
)
def test_span(td: timedelta, text: str) -> None:
    assert span(td) == text


def test_bounds_describe() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert Bounds().describe() == "whole table"
    assert Bounds(rows=0).empty
    text = Bounds("_ingested_at", None, t0, rows=1200).describe()
    assert text == "_ingested_at in (-inf, 2026-01-01T00:00:00+00:00], 1,200 rows"


def test_severity_vocabulary() -> None:
    assert Severity.ERROR.gx == "critical"
    assert Severity.WARN.gx == "warning"
