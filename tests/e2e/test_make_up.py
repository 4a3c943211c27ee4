"""The whole product on the test ports: `opsdash up` (what `make up` runs), then `down`.

The stack is the session fixture `product` (tests/e2e/conftest.py), shared with the browser
test (test_browser.py, which runs first); `test_down_stops_everything_it_started` runs last in
this module and stops it."""

import time

import httpx
import psycopg
import pytest

from opsdash_stack.probes import port_open
from tests.e2e.conftest import opsdash

pytestmark = pytest.mark.e2e


def count(url: str, relation: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select count(*) from {relation}").fetchone()[0]


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
