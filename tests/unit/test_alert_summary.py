"""Summary formatting of the customer_critical rule (pure functions, no database)."""

from __future__ import annotations

from alerting.rules import (
    CriticalCustomer,
    EvaluationSummary,
    customer_line,
    format_email,
    format_slack,
    top_customers,
)


def _customers(n: int) -> list[CriticalCustomer]:
    return [
        CriticalCustomer(
            alert_id=1000 + i,
            customer_id=i,
            risk_score=i / n,
            days_since_last_session=i % 40,
            sessions_30d=i % 3,
            avg_rating_30d=3.5,
            inbound_calls_30d=i % 5,
        )
        for i in range(1, n + 1)
    ]


def test_top_customers_orders_by_score_then_id() -> None:
    tied = [CriticalCustomer(1, 7, 0.9), CriticalCustomer(2, 3, 0.9), CriticalCustomer(3, 5, None)]
    assert [c.customer_id for c in top_customers(tied, 2)] == [3, 7]
    assert [c.customer_id for c in top_customers(tied)] == [3, 7, 5]


def test_customer_line_handles_missing_metrics() -> None:
    line = customer_line(CriticalCustomer(alert_id=1, customer_id=42, risk_score=0.876))
    assert line.startswith("customer 42: risk 0.88")
    assert "rating n/a" in line


def test_email_lists_top_twenty_and_counts_the_rest() -> None:
    subject, body = format_email(_customers(2500), resolved=3, still_open=2510)
    assert subject == "[opsdash] 2,500 customers entered the critical risk tier"
    listed = [line for line in body.splitlines() if line.startswith("  - customer")]
    assert len(listed) == 20
    assert listed[0].startswith("  - customer 2500: risk 1.00")
    assert "...and 2,480 more" in body
    assert "Open critical-customer alerts: 2,510; resolved in this check: 3." in body


def test_email_for_one_customer_is_singular_without_remainder() -> None:
    subject, body = format_email(_customers(1), resolved=0, still_open=1)
    assert subject == "[opsdash] 1 customer entered the critical risk tier"
    assert "customer 1:" in body
    assert "more" not in body


def test_slack_summary_shape() -> None:
    payload = format_slack(_customers(25), resolved=0, still_open=25)
    assert payload["text"].startswith("25 customers entered the critical risk tier")
    header, summary, bullets, context = payload["blocks"]
    assert header["type"] == "header"
    assert "*25* new critical" in summary["text"]["text"]
    assert bullets["text"]["text"].count("•") == 20
    assert "5 more" in context["elements"][0]["text"]


def test_from_row_reads_details() -> None:
    details = {"risk_score": 0.91, "sessions_30d": 0, "avg_rating_30d": None}
    c = CriticalCustomer.from_row(7, 42, details)
    assert (c.alert_id, c.customer_id, c.risk_score, c.sessions_30d) == (7, 42, 0.91, 0)


def test_summary_describe() -> None:
    assert "not evaluated (no table)" in EvaluationSummary(skipped_reason="no table").describe()
    text = EvaluationSummary(new=2, resolved=1, still_open=5, notification_ids=[8, 9]).describe()
    assert text == "customer_critical: 2 new, 1 resolved, 5 open; 2 notification(s) enqueued"
