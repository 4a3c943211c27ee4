"""One place that reads configuration: every part of opsdash imports `get_settings()`.

Values come from the process environment first, then from the env file that `make up`
writes (`.env`, or the file named by `OPSDASH_ENV_FILE`), then from the defaults below, which
describe the embedded single-machine deployment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Minutes a scheduled job may run every (`*/N` in cron evenly divides the hour).
CADENCES = (1, 2, 3, 5, 10, 15, 30)


def _env_file() -> str:
    return os.environ.get("OPSDASH_ENV_FILE", str(PROJECT_ROOT / ".env"))


class Settings(BaseSettings):
    """Connection strings, service ports and notification targets."""

    model_config = SettingsConfigDict(extra="ignore", env_file_encoding="utf-8")

    opsdash_home: Path = Field(default=PROJECT_ROOT / ".local")

    pg_port: int = Field(default=55432, alias="OPSDASH_PG_PORT")
    pg_user: str = Field(default="opsdash", alias="OPSDASH_PG_USER")
    pg_password: str = Field(default="", alias="OPSDASH_PG_PASSWORD")
    redis_port: int = Field(default=56379, alias="OPSDASH_REDIS_PORT")
    dagster_port: int = Field(default=3000, alias="DAGSTER_PORT")
    # Host headers (`name` or `name:port`, comma-separated) the Dagster UI answers besides
    # 127.0.0.1/localhost, e.g. a reverse proxy's name; any other Host is refused (DNS rebinding).
    dagster_allowed_hosts: str = Field(default="", alias="DAGSTER_ALLOWED_HOSTS")
    mlflow_port: int = Field(default=5000, alias="MLFLOW_PORT")
    streamlit_port: int = Field(default=8501, alias="STREAMLIT_PORT")
    support_api_port: int = Field(default=8100, alias="SUPPORT_API_PORT")

    warehouse_url: str = Field(default="", alias="WAREHOUSE_URL")
    source_url: str = Field(default="", alias="SOURCE_URL")
    dagster_pg_url: str = Field(default="", alias="DAGSTER_PG_URL")
    mlflow_backend_url: str = Field(default="", alias="MLFLOW_BACKEND_URL")
    # Least privilege (README "Security"): the URLs above are the superuser's (migrations,
    # set-up, the operator's CLI); the services connect as their own roles. A role URL counts only
    # while it names the same database as the URL it stands in for; empty = that URL.
    app_database_url: str = Field(default="", alias="APP_DATABASE_URL")
    pipeline_database_url: str = Field(default="", alias="PIPELINE_DATABASE_URL")
    source_reader_url: str = Field(default="", alias="SOURCE_READER_URL")
    # dbt's `set role` (profiles.yml): the owner of the dbt schemas, set for Dagster's processes.
    dbt_role: str = Field(default="", alias="OPSDASH_DBT_ROLE")
    redis_url: str = Field(default="", alias="REDIS_URL")
    # Redis refuses unauthenticated clients: `redis-server` reads it from a 0600 config file,
    # and every client sends it (in REDIS_URL or, when the URL has none, from here).
    redis_password: str = Field(default="", alias="OPSDASH_REDIS_PASSWORD")
    mlflow_tracking_uri: str = Field(default="", alias="MLFLOW_TRACKING_URI")
    # MLflow's basic-auth app (users, permissions) in front of the tracking server.
    mlflow_auth: bool = Field(default=False, alias="MLFLOW_AUTH")
    support_api_url: str = Field(default="", alias="SUPPORT_API_URL")
    # No default: a well-known token would open the API to anyone on the host.
    support_api_token: str = Field(default="", alias="SUPPORT_API_TOKEN")
    # Requests/s the ingestion sends the support API at most: the vendor's documented limit
    # (the simulator's default below); 0 sends as fast as the API answers.
    support_api_max_rps: float = Field(default=20.0, alias="SUPPORT_API_MAX_RPS")
    # Behaviour of the simulated support API (requests/s per token, share of 503s, latency).
    support_api_rate_limit: int = Field(default=20, alias="SUPPORT_API_RATE_LIMIT")
    support_api_fault_rate: float = Field(default=0.0, alias="SUPPORT_API_FAULT_RATE")
    support_api_latency_ms: int = Field(default=0, alias="SUPPORT_API_LATENCY_MS")

    smtp_host: str = Field(default="127.0.0.1", alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, alias="SMTP_PORT")
    alert_email_from: str = Field(default="opsdash@localhost", alias="ALERT_EMAIL_FROM")
    alert_email_to: str = Field(default="", alias="ALERT_EMAIL_TO")
    slack_webhook_url: str = Field(default="", alias="SLACK_WEBHOOK_URL")
    # SMTP transport security and login; the password only ever comes from the environment.
    smtp_security: Literal["none", "starttls", "ssl"] = Field(default="none", alias="SMTP_SECURITY")
    smtp_username: str = Field(default="", alias="SMTP_USERNAME")
    smtp_password: str = Field(default="", alias="SMTP_PASSWORD")
    # Where notifications link to (deep links to an alert); default: the local Streamlit app.
    app_base_url: str = Field(default="", alias="OPSDASH_APP_BASE_URL")
    # Notification routing per alert severity: channels among email, slack, digest (the daily
    # email digest), comma-separated; empty = not notified.
    route_critical: str = Field(default="email,slack", alias="OPSDASH_ROUTE_CRITICAL")
    route_warning: str = Field(default="slack", alias="OPSDASH_ROUTE_WARNING")
    route_info: str = Field(default="digest", alias="OPSDASH_ROUTE_INFO")
    # Channels that get "resolved" notices (comma-separated among email, slack; empty = none),
    # on top of each rule's `send_resolved`: e.g. `slack` keeps the mailbox to new problems.
    # `email` covers the digest too.
    send_resolved: str = Field(default="email,slack", alias="OPSDASH_SEND_RESOLVED")
    # Outbox retries: exponential backoff with jitter up to this cap; give up by age.
    outbox_backoff_cap_seconds: float = Field(default=1800.0, alias="OPSDASH_OUTBOX_BACKOFF_CAP_S")
    outbox_give_up_hours: float = Field(default=24.0, alias="OPSDASH_OUTBOX_GIVE_UP_HOURS")
    # Minutes without a completed alert-sensor tick before the watchdog emails (outside Dagster).
    watchdog_stale_minutes: float = Field(default=10.0, alias="OPSDASH_WATCHDOG_STALE_MINUTES")
    sink_http_port: int = Field(default=8025, alias="OPSDASH_SINK_HTTP_PORT")
    app_cookie_secret: str = Field(default="", alias="OPSDASH_COOKIE_SECRET")
    # Minutes without a click before an app session ends (0 = never; timer refreshes don't count).
    app_idle_minutes: int = Field(default=30, ge=0, alias="OPSDASH_SESSION_IDLE_MINUTES")
    # Host names the app answers to (Streamlit server.allowedHosts), comma-separated.
    app_allowed_hosts: str = Field(default="127.0.0.1,localhost", alias="STREAMLIT_ALLOWED_HOSTS")
    # Single sign-on (app_streamlit/oidc.py): the role of an identity whose e-mail is no app user;
    # viewer or operator, empty = refused (admin is never granted by default).
    app_oidc_default_role: str = Field(default="", alias="OPSDASH_OIDC_DEFAULT_ROLE")

    sim_live: bool | None = Field(default=None, alias="OPSDASH_SIM_LIVE")

    # Pipeline cadence in minutes (orchestration/lib/schedules.py): the incremental cycle
    # (sessions, requests + marts) and the support-calls ingestion; a divisor of 60 from CADENCES.
    cycle_minutes: int = Field(default=5, alias="OPSDASH_CYCLE_MINUTES")
    support_calls_minutes: int = Field(default=15, alias="OPSDASH_SUPPORT_CALLS_MINUTES")
    # Where the light dbt tests run: `cycle` (with the models of every incremental cycle; a
    # failing test fails the cycle before the marts downstream of it) or `hourly` (only in the
    # hourly check_marts_light job: a cycle costs ~4 s less at a million customers, and a test
    # failure shows within the hour instead of stopping the cycle).
    cycle_dbt_tests: Literal["cycle", "hourly"] = Field(
        default="cycle", alias="OPSDASH_CYCLE_DBT_TESTS"
    )

    # Recommendations (alerting/recommendations.py): at most this many open per type, an entity
    # enrolled in the same type at most N times per period, a pause after one was acted on.
    recommendations_max_open_per_type: int = Field(
        default=100, alias="RECOMMENDATIONS_MAX_OPEN_PER_TYPE"
    )
    recommendations_max_enrollments: int = Field(default=2, alias="RECOMMENDATIONS_MAX_ENROLLMENTS")
    recommendations_enrollment_days: int = Field(
        default=30, alias="RECOMMENDATIONS_ENROLLMENT_DAYS"
    )
    recommendations_cooldown_days: int = Field(default=7, alias="RECOMMENDATIONS_COOLDOWN_DAYS")
    recommendations_expire_days: int = Field(default=14, alias="RECOMMENDATIONS_EXPIRE_DAYS")
    recommendations_supply_horizon_hours: int = Field(
        default=48, alias="RECOMMENDATIONS_SUPPLY_HORIZON_HOURS"
    )

    @field_validator("cycle_minutes", "support_calls_minutes")
    @classmethod
    def _cadence(cls, minutes: int) -> int:
        if minutes not in CADENCES:
            allowed = ", ".join(map(str, CADENCES))
            raise ValueError(f"{minutes} is not a cadence in minutes; use one of {allowed}")
        return minutes

    def model_post_init(self, _context: object) -> None:
        auth = self.pg_user + (f":{self.pg_password}" if self.pg_password else "")
        base = f"postgresql://{auth}@127.0.0.1:{self.pg_port}"
        self.warehouse_url = self.warehouse_url or f"{base}/ops"
        self.source_url = self.source_url or f"{base}/marketplace"
        self.dagster_pg_url = self.dagster_pg_url or f"{base}/dagster"
        self.mlflow_backend_url = self.mlflow_backend_url or f"{base}/mlflow"
        self.app_database_url = _same_database(self.app_database_url, self.warehouse_url)
        self.pipeline_database_url = _same_database(self.pipeline_database_url, self.warehouse_url)
        self.source_reader_url = _same_database(self.source_reader_url, self.source_url)
        redis_auth = f":{self.redis_password}@" if self.redis_password else ""
        self.redis_url = self.redis_url or f"redis://{redis_auth}127.0.0.1:{self.redis_port}/0"
        self.mlflow_tracking_uri = (
            self.mlflow_tracking_uri or f"http://127.0.0.1:{self.mlflow_port}"
        )
        self.support_api_url = self.support_api_url or f"http://127.0.0.1:{self.support_api_port}"
        app_url = self.app_base_url or f"http://127.0.0.1:{self.streamlit_port}"
        self.app_base_url = app_url.rstrip("/")

    @property
    def simulator_enabled(self) -> bool:
        """The simulator stands in for the source only while nobody pointed us at real systems."""
        if self.sim_live is not None:
            return self.sim_live
        local = f"http://127.0.0.1:{self.support_api_port}"
        return self.support_api_url == local and "127.0.0.1" in self.source_url

    @property
    def run_dir(self) -> Path:
        return self.opsdash_home / "run"

    @property
    def log_dir(self) -> Path:
        return self.opsdash_home / "logs"

    def libpq_parts(self, url: str | None = None) -> dict[str, str]:
        """Host/port/user/password/dbname of a URL, for tools (dbt, psql) that want them apart."""
        parts = urlsplit(url or self.warehouse_url)
        return {
            "host": parts.hostname or "127.0.0.1",
            "port": str(parts.port or 5432),
            "user": parts.username or "",
            "password": parts.password or "",
            "dbname": parts.path.lstrip("/"),
        }


def _same_database(role_url: str, url: str) -> str:
    """`role_url` if it names the database of `url` (host, port, name), else `url`: a role URL
    written for the local cluster never redirects a deployment pointed at another database."""
    if not role_url:
        return url
    a, b = urlsplit(role_url), urlsplit(url)
    same = (a.hostname, a.port, a.path) == (b.hostname, b.port, b.path)
    return role_url if same else url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(_env_file=_env_file())  # type: ignore[call-arg]


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment at run time)."""
    get_settings.cache_clear()
