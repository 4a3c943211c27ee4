"""The test stack's own services, started the way `opsdash up` starts them: no process on the
host shows a secret from `.env` on its command line, Redis refuses clients without the
password, scoring refuses a pickled champion registered on the stack's MLflow, and what the
services write (mail in the outbox, MLflow artifacts) only the deployment's user can read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_urlsafe
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
import redis as redis_lib

from opsdash_core.redis_client import redis_client
from opsdash_core.settings import Settings, get_settings
from opsdash_stack import envfile
from opsdash_stack.lifecycle import start_services
from opsdash_stack.services.catalog import python_services
from opsdash_stack.supervisor import pidfile, read_pid, stop_service

pytestmark = pytest.mark.integration

# What `opsdash up` starts besides PostgreSQL and Redis, minus the heavy Dagster and Streamlit
# processes (their argv is checked in tests/unit/test_hardening_secrets.py).
STARTED = ("sinks", "support-api", "mlflow")
SECRET_KEYS = (
    "OPSDASH_PG_PASSWORD",
    "OPSDASH_REDIS_PASSWORD",
    "SUPPORT_API_TOKEN",
    "OPSDASH_COOKIE_SECRET",
    # each service role's password, inside its URL (MLflow gets MLFLOW_BACKEND_URL's)
    *envfile.ROLE_URLS,
)


def _env_file() -> Path:
    return Path(os.environ["OPSDASH_ENV_FILE"])


def _env_values() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in _env_file().read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def _secrets(values: dict[str, str]) -> dict[str, str]:
    """SECRET_KEYS' values; for a URL, the password in it."""
    return {
        key: (urlsplit(values[key]).password or "") if "://" in values[key] else values[key]
        for key in SECRET_KEYS
    }


def _leaks(secrets: dict[str, str]) -> list[tuple[int, str]]:
    """(pid, key) for every process whose command line shows one of `secrets`."""
    return [
        (pid, key)
        for pid, cmd in _command_lines().items()
        for key, value in secrets.items()
        if value in cmd
    ]


def _command_lines() -> dict[int, str]:
    """Every process's argv as `ps` would show it to any local user."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        found[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Settings]:
    s = get_settings()
    by_name = {svc.name: svc for svc in python_services(s)}
    started: list[str] = []
    try:
        for name in STARTED:
            started.append(name)
            start_services(s, [by_name[name]])  # as `opsdash up` starts them
        yield s
    finally:
        for name in reversed(started):
            stop_service(s, name)


def test_no_command_line_on_the_host_holds_a_secret(stack: Settings) -> None:
    secrets = _secrets(_env_values())
    assert all(len(v) >= 16 for v in secrets.values()), [k for k, v in secrets.items() if not v]
    lines = _command_lines()
    # The processes that used to carry secrets are really there to be looked at.
    assert any("mlflow" in cmd and "server" in cmd for cmd in lines.values())
    assert any("redis-server" in cmd and str(stack.redis_port) in cmd for cmd in lines.values())
    assert any("postgres" in cmd for cmd in lines.values())
    assert _leaks(secrets) == []


def test_secret_files_are_private(stack: Settings) -> None:
    assert stat.S_IMODE(_env_file().stat().st_mode) == 0o600
    conf = stack.opsdash_home / "redis" / "redis.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert f"requirepass {stack.redis_password}" in conf.read_text()


def test_redis_refuses_a_client_without_the_password(stack: Settings) -> None:
    anonymous = redis_lib.Redis(host="127.0.0.1", port=stack.redis_port, socket_timeout=2)
    with pytest.raises(redis_lib.AuthenticationError):
        anonymous.get("opsdash:probe")
    wrong = redis_lib.Redis(
        host="127.0.0.1", port=stack.redis_port, password="not-the-password", socket_timeout=2
    )
    with pytest.raises(redis_lib.AuthenticationError):
        wrong.ping()
    client = redis_client()  # what the app, the cache and the login limiter use
    assert client is not None
    assert client.ping()


def _register_pickled_champion(tracking_uri: str) -> str:
    """What anyone on the host can do against an MLflow without auth: log a pickle model under
    the churn model's name and move `champion` to it."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from ml.registry import CHAMPION, MODEL_NAME

    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=MODEL_NAME,
                serialization_format="pickle",
                pip_requirements=["scikit-learn"],
            )
    finally:
        mlflow.set_tracking_uri("")
        mlflow.set_registry_uri("")
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        MODEL_NAME, CHAMPION, version
    )
    return version


def test_scoring_refuses_a_pickled_champion_and_keeps_the_scores(
    stack: Settings, warehouse_url: str
) -> None:
    from ml.jobs import score_active_customers
    from ml.registry import load_champion
    from ml.safe_load import UntrustedModelError

    version = _register_pickled_champion(stack.mlflow_tracking_uri)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "insert into ml.churn_scores (customer_id, scored_at, churn_probability, model_name,"
            " model_version) values (1, now(), 0.4, 'churn_logreg', '1')"
        )
        conn.commit()
        with pytest.raises(UntrustedModelError, match=f"/{version}.*'pickle'.*refused"):
            score_active_customers(conn, stack.mlflow_tracking_uri, datetime.now(UTC))
        conn.rollback()
        left = conn.execute("select count(*), max(model_version) from ml.churn_scores").fetchone()
    assert left == (1, "1")
    with pytest.raises(UntrustedModelError):
        load_champion(stack.mlflow_tracking_uri)

    # The Dagster asset fails at its first attempt, skipping the half-hour retry policy that
    # transient faults get, so the run-failure alert fires now; the scores stay.
    import dagster as dg

    from orchestration.defs.churn.assets import churn_scores
    from orchestration.defs.resources import MlflowResource, WarehouseResource

    resources = {
        "warehouse": WarehouseResource(url=warehouse_url),
        "mlflow": MlflowResource(tracking_uri=stack.mlflow_tracking_uri),
    }
    with pytest.raises(dg.Failure) as failure:  # fast check first: no 30-minute wait on a bug
        churn_scores(**resources)
    assert failure.value.allow_retries is False
    result = dg.materialize([churn_scores], resources=resources, raise_on_error=False)
    assert not result.success
    kinds = [event.event_type for event in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in kinds
    assert kinds.count(dg.DagsterEventType.STEP_START) == 1
    step_failure = next(e for e in result.all_events if e.is_step_failure)
    failure_data = step_failure.step_failure_data.user_failure_data
    assert failure_data is not None
    assert f"/{version} is serialized with 'pickle'" in (failure_data.description or "")
    assert "opsdash models rollback" in (failure_data.description or "")
    with psycopg.connect(warehouse_url) as conn:
        left = conn.execute("select count(*), max(model_version) from ml.churn_scores").fetchone()
    assert left == (1, "1")


def test_a_skops_model_on_the_stack_mlflow_still_loads(stack: Settings) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from ml.registry import SKOPS_TRUSTED_TYPES, tracking_context
    from ml.safe_load import load_trusted_sklearn

    x = np.array([[0.0], [1.0], [np.nan], [3.0]])
    pipeline = make_pipeline(SimpleImputer(), LogisticRegression()).fit(x, [0, 1, 0, 1])
    with tracking_context(stack.mlflow_tracking_uri):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                registered_model_name="hardening_skops_probe",
                serialization_format="skops",
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                pip_requirements=["scikit-learn"],
            )
        uri = f"models:/hardening_skops_probe/{info.registered_model_version}"
        loaded = load_trusted_sklearn(uri, SKOPS_TRUSTED_TYPES)
    assert loaded.predict_proba(np.array([[2.0]])).shape == (1, 2)
    # The server stored the model under OPSDASH_HOME, out of other users' reach.
    artifacts = stack.opsdash_home / "mlflow-artifacts"
    assert any(p.name == "MLmodel" for p in artifacts.rglob("*"))
    assert _loose_files(artifacts) == []


def _umask(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(
        next(line for line in status.splitlines() if line.startswith("Umask:")).split()[1], 8
    )


def _loose_files(top: Path) -> list[str]:
    """Files or directories under `top` that other users could read or enter."""
    return [
        str(p)
        for p in [top, *top.rglob("*")]
        if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077
    ]


def test_services_run_with_umask_077_and_write_private_files(stack: Settings) -> None:
    import smtplib
    from email.message import EmailMessage

    for name in STARTED:
        pid = read_pid(pidfile(stack, name))
        assert pid is not None, name
        assert _umask(pid) == 0o077, name
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "opsdash@localhost", "ops@localhost", "probe"
    mail.set_content("customer 42 is at risk")
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=10) as smtp:
        smtp.send_message(mail)
    outbox = stack.opsdash_home / "outbox"
    assert any(p.suffix == ".eml" for p in outbox.rglob("*"))
    assert _loose_files(outbox) == []
    logs = [stack.log_dir / f"{name}.log" for name in STARTED]
    assert [str(p) for p in logs if stat.S_IMODE(p.stat().st_mode) & 0o077] == []


def test_mlflow_auth_refuses_requests_without_the_user(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLFLOW_AUTH=true, started the way `opsdash up` starts MLflow (beside the stack's own,
    on the same backend database): no answer without the user from `.env`, and opsdash's
    MLflow clients send it. Its password reaches the server by environment, never argv."""
    import httpx
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from opsdash_stack.services import mlflow as mlflow_service
    from opsdash_stack.sinks import free_port

    password = token_urlsafe(18)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    port = free_port()
    home = stack.opsdash_home / "mlflow-auth-probe"
    home.mkdir(mode=0o700)
    auth = stack.model_copy(
        update={
            "mlflow_auth": True,
            "mlflow_port": port,
            "mlflow_tracking_uri": f"http://127.0.0.1:{port}",
            "opsdash_home": home,
        }
    )
    try:
        start_services(auth, [mlflow_service.service(auth)])
        search = f"{auth.mlflow_tracking_uri}/api/2.0/mlflow/experiments/search"
        body = {"max_results": 1}
        assert httpx.post(search, json=body, timeout=30).status_code == 401
        wrong = httpx.post(search, json=body, auth=("admin", "not-the-password"), timeout=30)
        assert wrong.status_code == 401
        right = httpx.post(search, json=body, auth=("admin", password), timeout=30)
        assert right.status_code == 200
        assert _leaks({"MLFLOW_TRACKING_PASSWORD": password}) == []
        # What the pipeline's MLflow clients do: credentials from the environment.
        assert MlflowClient(auth.mlflow_tracking_uri).search_experiments(max_results=1)
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
        with pytest.raises(MlflowException, match=r"\b401\b"):
            MlflowClient(auth.mlflow_tracking_uri).search_experiments(max_results=1)
    finally:
        stop_service(auth, "mlflow")


def test_mlflow_answers_right_after_a_postgres_restart(stack: Settings) -> None:
    """Last in this module: it restarts the test cluster under the running MLflow server."""
    import httpx

    from opsdash_stack.services import postgres

    search = f"{stack.mlflow_tracking_uri}/api/2.0/mlflow/experiments/search"
    assert httpx.post(search, json={"max_results": 1}, timeout=30).status_code == 200
    postgres.stop(stack)
    postgres.start(stack)
    assert httpx.post(search, json={"max_results": 1}, timeout=30).status_code == 200
