"""Which services opsdash runs, in start order, and what `opsdash status` shows about them."""

from __future__ import annotations

from opsdash_core.settings import Settings
from opsdash_stack.probes import port_open
from opsdash_stack.services import dagster, mlflow, simulator, sinks, streamlit, watchdog
from opsdash_stack.supervisor import Service, pidfile, read_pid


def python_services(s: Settings) -> list[Service]:
    """The background processes besides PostgreSQL and Redis, in start order."""
    services = [
        mlflow.service(s),
        dagster.webserver(s),
        dagster.daemon(s),
        watchdog.service(s),
        streamlit.service(s),
    ]
    if sinks.wanted(s):
        services.insert(0, sinks.service(s))
    if s.simulator_enabled:
        services.insert(0, simulator.support_api(s))
        services.append(simulator.live(s))
    return services


def status(s: Settings) -> list[tuple[str, str, str]]:
    """(service, state, where) for every service opsdash manages."""
    rows = [
        ("postgresql", "running" if port_open(s.pg_port) else "stopped", f"127.0.0.1:{s.pg_port}"),
        ("redis", "running" if port_open(s.redis_port) else "stopped", f"127.0.0.1:{s.redis_port}"),
    ]
    for svc in python_services(s):
        pid = read_pid(pidfile(s, svc.name))
        where = f"http://127.0.0.1:{svc.port}" if svc.port else "-"
        rows.append((svc.name, f"running (pid {pid})" if pid else "stopped", where))
    return rows
