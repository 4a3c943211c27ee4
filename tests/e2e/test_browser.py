"""The operations app in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven
by Playwright, against the stack `opsdash up` started for the e2e tier (the session fixture
`product` in tests/e2e/conftest.py, 1,500 customers; no second stack).

One operator's round: a wrong password refused, log in, see the overview, open a critical customer from the filtered
customer list, acknowledge an alert from its deep link (`/alerts?alert=<id>`, the link alert
e-mails carry), accept a recommendation, look at every other page, log out. A screenshot of
every page goes to `<OPSDASH_HOME>/screenshots/` (`.local/testrun/screenshots/` under
`make test`). The tables' built-in CSV download is checked to be gone (exports go through the
app's own audited button only).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
E2E_DEDUPE = "e2e-browser:customer_critical"
VIEWPORT = {"width": 1440, "height": 1000}
# The height of the page's content: Streamlit scrolls inside a container, so the window's own
# scroll height stops at the viewport; the main block's height plus its top padding does not.
CONTENT_HEIGHT_JS = """() => {
    const main = document.querySelector('[data-testid="stMainBlockContainer"]');
    const side = document.querySelector('[data-testid="stSidebarContent"]');
    return Math.max(document.body.scrollHeight,
                    main ? main.getBoundingClientRect().height + 160 : 0,
                    side ? side.scrollHeight : 0);
}"""
IDLE_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
WAIT_MS = 60_000  # this 2-core machine under a full test run can take 30 s for a page


# ------------------------------------------------------------------------------------- data


def _one(conn: psycopg.Connection, sql: str, *args: object) -> Any:
    row = conn.execute(sql, args).fetchone()
    return None if row is None else row[0]


def critical_customer(conn: psycopg.Connection) -> int:
    """The riskiest critical customer; if the small stack has none, the riskiest customer is
    made critical (the mart row only: the app reads the tier from there)."""
    found = _one(
        conn,
        "select customer_id from marts.customer_health where risk_tier = 'critical' "
        "order by risk_score desc, customer_id limit 1",
    )
    if found is not None:
        return int(found)
    found = _one(
        conn,
        "update marts.customer_health set risk_tier = 'critical' where customer_id = "
        "(select customer_id from marts.customer_health order by risk_score desc, customer_id "
        "limit 1) returning customer_id",
    )
    assert found is not None, "marts.customer_health is empty"
    return int(found)


def open_alert(conn: psycopg.Connection) -> int:
    """An open alert of its own that nothing else changes while the browser works: the live
    stack's sensors resolve a rule alert whose condition clears (a picked open customer alert
    was resolved mid-test once), but an event alert (`dagster_run_failed`) is resolved by hand
    only."""
    return int(
        _one(
            conn,
            "insert into app.alerts (rule, entity_type, entity_id, severity, title, dedupe_key,"
            " details) values ('dagster_run_failed', 'job', null, 'critical', %s, %s, %s)"
            " returning id",
            "Dagster run of e2e_browser_job failed (browser test)",
            f"dagster_run_failed:{E2E_DEDUPE}:{time.time_ns()}",
            '{"job_name": "e2e_browser_job", "run_id": "e2e", "error": "browser test"}',
        )
    )


def active_recommendation(conn: psycopg.Connection, customer_id: int) -> int:
    """An active recommendation an operator may act on; one is created if none exists."""
    found = _one(
        conn,
        "select id from app.recommendations where status = 'active' "
        "order by (entity_type = 'customer' and entity_id = %s) desc, priority desc, id limit 1",
        customer_id,
    )
    if found is not None:
        return int(found)
    return int(
        _one(
            conn,
            "insert into app.recommendations "
            "(entity_type, entity_id, rec_type, reason_code, reason, action, priority) "
            "values ('customer', %s, 'retention_call', 'e2e', "
            "'Critical churn risk (browser test)', 'Call the customer', 90) returning id",
            customer_id,
        )
    )


@pytest.fixture(scope="module")
def seeded(product: dict) -> dict[str, Any]:
    s = product["settings"]
    with psycopg.connect(s.warehouse_url, autocommit=True) as conn:
        customer = critical_customer(conn)
        alert = open_alert(conn)
        rec = active_recommendation(conn, customer)
    password = (s.opsdash_home / "admin-password").read_text().strip()
    shots = s.opsdash_home / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    return {
        "settings": s,
        "base": f"http://127.0.0.1:{s.streamlit_port}",
        "password": password,
        "customer": customer,
        "alert": alert,
        "rec": rec,
        "shots": shots,
    }


def _status(url: str, table: str, row_id: int) -> str:
    with psycopg.connect(url) as conn:
        return str(_one(conn, f"select status from app.{table} where id = %s", row_id))


def _wait_status(url: str, table: str, row_id: int, wanted: str, timeout_s: float = 15) -> str:
    deadline = time.monotonic() + timeout_s
    status = _status(url, table, row_id)
    while status != wanted and time.monotonic() < deadline:
        time.sleep(0.25)
        status = _status(url, table, row_id)
    return status


# ---------------------------------------------------------------------------------- browser


@pytest.fixture
def page(seeded: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        pg = context.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        context.close()
        browser.close()
        assert not errors, f"JavaScript errors in the app: {errors}"


def _shot(page: Any, shots: Path, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main container, so the window is made as
    tall as the content (up to 6,000 px) for the shot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # The script run is over (a live section's own rerun may bring the widget back: best effort).
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(IDLE_JS, timeout=15_000)
    page.wait_for_timeout(300)  # let charts finish their first paint
    height = min(int(page.evaluate(CONTENT_HEIGHT_JS)) + 40, 6000)
    if height > VIEWPORT["height"]:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.wait_for_timeout(300)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


def _heading(page: Any, text: str) -> Any:
    from playwright.sync_api import expect

    heading = page.get_by_role("heading", name=text, exact=True)
    expect(heading).to_be_visible()
    return heading


def _metric(page: Any, label: str) -> Any:
    return page.get_by_test_id("stMetric").filter(has_text=label).first


def _nav(page: Any, title: str) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).first.click()
    _heading(page, title)


def test_an_operator_round_in_the_browser(page: Any, seeded: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    base, shots, url = seeded["base"], seeded["shots"], seeded["settings"].warehouse_url
    customer, alert, rec = seeded["customer"], seeded["alert"], seeded["rec"]
    expect.set_options(timeout=WAIT_MS)
    started = time.monotonic()

    # Log in at the root; the overview follows.
    page.goto(base + "/")
    expect(page.get_by_label("Username")).to_be_visible()
    _shot(page, shots, "01-login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password", exact=True).fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Invalid username or password")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(seeded["password"])
    page.get_by_role("button", name="Log in").click()
    active = _metric(page, "Active customers")
    expect(active).to_be_visible()
    assert int(active.get_by_test_id("stMetricValue").inner_text().replace(",", "")) > 100
    _heading(page, "Overview")
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(8)
    _shot(page, shots, "02-overview")

    # The critical customers (a shared, filtered link), then one of them through the form.
    page.goto(f"{base}/customers?tier=critical")
    _heading(page, "Customers")
    expect(page.get_by_text("customers match")).to_be_visible()
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    table.hover()
    toolbar = page.get_by_test_id("stElementToolbar").first
    expect(toolbar.get_by_role("button", name="Search")).to_be_visible()
    expect(page.get_by_role("button", name="Download as CSV")).to_have_count(0)
    _shot(page, shots, "03-customers-critical")
    page.get_by_label("Customer id").fill(str(customer))
    page.get_by_role("button", name="Open customer").click()
    _heading(page, f"Customer {customer}")
    expect(_metric(page, "Tier").get_by_test_id("stMetricValue")).to_have_text("critical")
    expect(page.get_by_role("heading", name="Why at risk")).to_be_visible()
    expect(page.get_by_role("heading", name="Recent support calls")).to_be_visible()
    _shot(page, shots, "04-customer-detail")

    # The alert's deep link (what the e-mail links to): acknowledge, with the confirm step.
    page.goto(f"{base}/alerts?alert={alert}")
    _heading(page, f"Alert {alert}")
    status = _metric(page, "Status").get_by_test_id("stMetricValue")
    expect(status).to_have_text("open")
    _shot(page, shots, "05-alert-open")
    page.get_by_role("button", name="Acknowledge", exact=True).click()
    page.get_by_label("Comment (optional)").fill("Calling the customer today (browser test)")
    page.get_by_role("button", name="Confirm acknowledge").click()
    expect(status).to_have_text("acknowledged")
    assert _wait_status(url, "alerts", alert, "acknowledged") == "acknowledged"
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # the event history
    _shot(page, shots, "06-alert-acknowledged")

    # A recommendation: accept it.
    page.goto(f"{base}/recommendations?rec={rec}")
    _heading(page, "Recommendations")
    page.get_by_label("Comment").fill("Booked a call (browser test)")
    _shot(page, shots, "07-recommendation-active")
    page.get_by_role("button", name="Accept", exact=True).click()
    assert _wait_status(url, "recommendations", rec, "accepted") == "accepted"
    expect(page.get_by_text("status accepted")).to_be_visible()
    _shot(page, shots, "08-recommendation-accepted")

    # Every other page, through the navigation (one Streamlit session, as a user clicks).
    for n, title in enumerate(
        ("Alerts", "Recommendations", "Tutors", "Forecasts & supply", "Models & data", "Admin"),
        start=9,
    ):
        _nav(page, title)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        slug = title.lower().replace(" & ", "-").replace(" ", "-")
        _shot(page, shots, f"{n:02d}-{slug}")

    # Log out: the login form, and a reload does not bring the session back.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    page.goto(f"{base}/overview")
    expect(page.get_by_label("Username")).to_be_visible()
    _shot(page, shots, "15-logged-out")

    with psycopg.connect(url) as conn:
        actions = {
            row[0]
            for row in conn.execute(
                "select action from app.audit_log where username = 'admin' "
                "and at > now() - interval '10 minutes'"
            )
        }
    assert {"login_success", "logout"} <= actions, actions
    elapsed = time.monotonic() - started
    print(f"browser round took {elapsed:.1f}s; screenshots in {shots}")
