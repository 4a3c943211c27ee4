"""The whole product on the test ports: `opsdash up` (what `make up` runs), then `down`."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from opsdash_core.settings import PROJECT_ROOT, get_settings
from opsdash_stack.probes import port_open

pytestmark = pytest.mark.e2e

OPSDASH = str(Path(sys.executable).parent / "opsdash")


def opsdash(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPSDASH, *args],
        cwd=PROJECT_ROOT,
        env=clean_env(),
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def clean_env() -> dict[str, str]:
    """The environment a user's shell would have: nothing left behind by in-process tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def count(url: str, relation: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select count(*) from {relation}").fetchone()[0]


def fresh_databases() -> None:
    """Start from empty databases, as a fresh machine would: earlier tiers share this cluster."""
    s = get_settings()
    admin = s.warehouse_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in ("ops", "marketplace", "dagster", "mlflow"):
            conn.execute(f'drop database if exists "{name}" with (force)')
    (s.opsdash_home / "admin-password").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def product() -> object:
    s = get_settings()
    fresh_databases()
    started = time.monotonic()
    result = opsdash("up", "--scale", "1500", "--days", "90")
    print(result.stdout[-4000:], result.stderr[-4000:])
    assert result.returncode == 0, result.stderr[-3000:]
    yield {"settings": s, "stdout": result.stdout, "seconds": time.monotonic() - started}
    opsdash("down")
    # Later tests still need PostgreSQL and Redis.
    opsdash("up", "--infra-only")


def test_every_url_answers(product: dict) -> None:
    s = product["settings"]
    urls = [
        f"http://127.0.0.1:{s.dagster_port}/server_info",
        f"http://127.0.0.1:{s.mlflow_port}/health",
        f"http://127.0.0.1:{s.streamlit_port}/_stcore/health",
        f"http://127.0.0.1:{s.support_api_port}/health",
    ]
    for url in urls:
        assert httpx.get(url, timeout=10).status_code == 200, url
    out = product["stdout"]
    assert f"http://127.0.0.1:{s.streamlit_port}" in out
    assert "admin-password" in out


def test_data_flowed_through_every_layer(product: dict) -> None:
    s = product["settings"]
    assert "generating simulated marketplace history" in product["stdout"]
    assert "materializing every asset once" in product["stdout"]
    assert count(s.warehouse_url, "raw.sessions") > 1000
    assert count(s.warehouse_url, "marts.customer_health") > 100
    assert count(s.warehouse_url, "ml.churn_scores") > 100
    with psycopg.connect(s.warehouse_url) as conn:
        assert conn.execute("select count(*) from app.users where username='admin'").fetchone()[0]
    pw = s.opsdash_home / "admin-password"
    assert oct(pw.stat().st_mode & 0o777) == "0o600"


def test_mlflow_holds_a_registered_champion(product: dict) -> None:
    s = product["settings"]
    resp = httpx.get(
        f"http://127.0.0.1:{s.mlflow_port}/api/2.0/mlflow/registered-models/alias",
        params={"name": "churn_logreg", "alias": "champion"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["model_version"]["version"]


def test_second_up_is_quick_and_keeps_data(product: dict) -> None:
    s = product["settings"]
    before = count(s.warehouse_url, "raw.sessions")
    started = time.monotonic()
    result = opsdash("up", timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already running" in result.stdout
    assert "generating simulated" not in result.stdout
    assert "materializing every asset" not in result.stdout
    assert count(s.warehouse_url, "raw.sessions") >= before
    print(f"second `opsdash up` took {elapsed:.1f}s")


def test_browser_login_shows_the_overview(product: dict) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = product["settings"]
    password = (s.opsdash_home / "admin-password").read_text().strip()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{s.streamlit_port}/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password", exact=True).fill("wrong-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("Invalid username or password")).to_be_visible(timeout=20_000)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Log in").click()
        metric = page.get_by_test_id("stMetric").filter(has_text="Active customers")
        expect(metric).to_be_visible(timeout=30_000)
        value = metric.get_by_test_id("stMetricValue").inner_text()
        assert int(value.replace(",", "")) > 100
        page.screenshot(path=str(s.opsdash_home / "overview.png"), full_page=True)
        browser.close()


def test_down_stops_everything_it_started(product: dict) -> None:
    s = product["settings"]
    result = opsdash("down")
    assert result.returncode == 0, result.stderr
    for port in (s.dagster_port, s.mlflow_port, s.streamlit_port, s.support_api_port, s.pg_port):
        deadline = time.monotonic() + 20
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not port_open(port), f"port {port} still open after down"
    assert not list((s.run_dir).glob("*.pid"))
    opsdash("up", "--infra-only")
