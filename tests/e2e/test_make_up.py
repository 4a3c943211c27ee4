"""The whole product on the test ports: `opsdash up` (what `make up` runs), then `down`.

The stack is the session fixture `product` (tests/e2e/conftest.py), shared with the browser
test (test_browser.py, which runs first); `test_down_stops_everything_it_started` runs last in
this module and stops it."""

import os
import stat
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from opsdash_stack import envfile
from opsdash_stack.probes import port_open
from opsdash_stack.services.catalog import python_services
from opsdash_stack.supervisor import pidfile, read_pid
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


def env_secrets(path: Path) -> dict[str, str]:
    """Every secret in `.env`: the value of each key naming a password, token or secret, and
    the password inside each URL (the superuser's, every service role's, Redis')."""
    found = {}
    for key, value in envfile._values(path.read_text()).items():
        password = urlsplit(value).password if "://" in value else None
        if password:
            found[key] = password
        elif value and any(word in key for word in ("PASSWORD", "TOKEN", "SECRET")):
            found[key] = value
    return found


def command_lines() -> dict[int, list[str]]:
    """Every process's argv, as `ps` shows it to any local user."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            raw = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:  # gone meanwhile
            continue
        if raw:
            found[int(entry.name)] = raw.decode(errors="replace").split("\0")
    return found


def test_no_process_shows_a_secret_from_env(product: dict) -> None:
    secrets = env_secrets(Path(os.environ["OPSDASH_ENV_FILE"]))
    expected = {
        *envfile.ROLE_URLS,  # each service role's password
        "WAREHOUSE_URL",
        "OPSDASH_PG_PASSWORD",
        "OPSDASH_REDIS_PASSWORD",
        "REDIS_URL",
        "SUPPORT_API_TOKEN",
        "OPSDASH_COOKIE_SECRET",
        "MLFLOW_TRACKING_PASSWORD",
    }
    assert expected <= set(secrets)
    assert all(len(value) >= 16 for value in secrets.values())
    lines = command_lines()
    text = " ".join(" ".join(argv) for argv in lines.values())
    for name in ("dagster_ui", "dagster-daemon", "dagster api grpc", "streamlit", "mlflow"):
        assert name in text, name  # the processes that get the secrets are there to be seen
    leaks = [
        (pid, key, argv[0])  # never the secret itself in the report
        for pid, argv in lines.items()
        for key, value in secrets.items()
        if value in " ".join(argv)
    ]
    assert leaks == []


def umask(pid: int) -> int | None:
    """The process's umask; None once it has exited (a zombie's status has no Umask line)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((ln for ln in status.splitlines() if ln.startswith("Umask:")), None)
    return None if line is None else int(line.split()[1], 8)


def mode(path: Path) -> int:
    """Permission bits; 0 for a file removed while the tree is walked (a run's temp file)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0


def descendants(roots: set[int]) -> set[int]:
    """`roots` and every process started under them (Dagster's code servers and runs)."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parent[int(entry.name)] = int(fields[1])
    tree = set(roots)
    while grown := {pid for pid, ppid in parent.items() if ppid in tree} - tree:
        tree |= grown
    return tree


def test_every_service_and_its_children_run_with_umask_077(product: dict) -> None:
    s = product["settings"]
    started = {svc.name: read_pid(pidfile(s, svc.name)) for svc in python_services(s)}
    assert started["dagster-webserver"] is not None
    assert started["dagster-daemon"] is not None
    # Dagster's code servers and runs are the services' children.
    tree = descendants({pid for pid in started.values() if pid})
    assert len(tree) > len(started)
    masks = {pid: umask(pid) for pid in tree}
    assert any(mask is not None for mask in masks.values())
    assert {pid: oct(m) for pid, m in masks.items() if m is not None and m != 0o077} == {}
    # What they wrote: Dagster's storage and logs, MLflow's artifacts, mail, Data Docs (not
    # the browser test's screenshots: this pytest process writes those).
    shots = s.opsdash_home / "screenshots"
    # os.walk, not rglob: a run's temporary directory can vanish mid-walk.
    tree_paths = [
        Path(top) / name for top, dirs, files in os.walk(s.opsdash_home) for name in [*dirs, *files]
    ]
    written = [
        p
        for p in tree_paths
        if not p.is_symlink() and not p.is_relative_to(shots) and mode(p) & 0o077
    ]
    assert [str(p) for p in written] == []


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
