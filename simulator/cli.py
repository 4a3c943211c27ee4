"""`opsdash sim`: generate a marketplace history, keep it live, inject scenarios.

Everything writes into the database at `get_settings().source_url`. Heavy modules (numpy, the
model) are imported inside the commands so that `opsdash --help` stays fast.
"""

from __future__ import annotations

import time

import click

from opsdash_core.settings import get_settings


def _optional_epoch(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """Click callback of the TIME options: None stays None (meaning now)."""
    return None if value is None else _epoch(value)


def _epoch(value: str) -> int:
    """Epoch seconds from an ISO 8601 time (naive means UTC) or a number of seconds."""
    from datetime import UTC, datetime

    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is neither ISO 8601 nor epoch seconds") from exc
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


@click.group("sim")
def sim() -> None:
    """The marketplace simulator (stands in for the Rails app and the support system)."""


@sim.command()
@click.option(
    "--scale",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=10),
    help="Customers; sessions/day follow as scale * 0.03.",
)
@click.option(
    "--days",
    default=180,
    show_default=True,
    type=click.IntRange(1, 3650),
    help="Days of history ending now, or at --end (UTC, to the minute).",
)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--replace", is_flag=True, help="Wipe and regenerate if data already exists.")
@click.option(
    "--end",
    "end",
    default=None,
    metavar="TIME",
    callback=_optional_epoch,
    help="End the history at TIME (ISO 8601, UTC if no offset, or epoch seconds) instead of "
    "now; `opsdash sim replay --from TIME` can then fill the time since as live mode would.",
)
def generate(scale: int, days: int, seed: int, replace: bool, end: int | None) -> None:
    """Create the schema and write a deterministic history (idempotent without --replace)."""
    from simulator.generator import generate as run

    if end is not None and end > time.time():
        raise click.BadParameter("the history cannot end in the future", param_hint="--end")
    run(
        get_settings().source_url,
        scale=scale,
        days=days,
        seed=seed,
        replace=replace,
        history_end=None if end is None else end // 60 * 60,
        echo=click.echo,
    )


@sim.command()
@click.option(
    "--from",
    "start",
    required=True,
    metavar="TIME",
    callback=lambda _ctx, _param, value: _epoch(value),
    help="Replay from TIME (ISO 8601, UTC if no offset, or epoch seconds), e.g. the --end "
    "of a generated history.",
)
@click.option(
    "--to",
    "end",
    default=None,
    metavar="TIME",
    callback=_optional_epoch,
    help="Replay up to TIME (default now).",
)
@click.option(
    "--step",
    default=3600,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds of marketplace time per tick (an hour keeps the hour-of-day demand shape).",
)
def replay(start: int, end: int | None, step: int) -> None:
    """Write what live mode would have written between two times, tick by tick, then exit."""
    from simulator.live import replay as run

    stop = int(time.time()) if end is None else end
    if stop > time.time():
        raise click.BadParameter("cannot replay the future", param_hint="--to")
    try:
        totals = run(get_settings().source_url, start=start, end=stop, step=step, echo=click.echo)
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("replayed: " + " ".join(f"{k}={v:,}" for k, v in totals.items() if v))


@sim.command()
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between ticks (and the wall-clock span one tick covers).",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Activity multiplier: 10 writes ten times as many events per tick.",
)
@click.option("--once", is_flag=True, help="Write one interval and exit.")
@click.option(
    "--at",
    "at",
    default=None,
    metavar="TIME",
    callback=_optional_epoch,
    help="With --once: write the interval ending at TIME (ISO 8601, UTC if no offset, or epoch "
    "seconds) instead of now. Demand follows the hour of day, so this replays a chosen hour.",
)
def live(interval: float, speed: float, once: bool, at: int | None) -> None:
    """Keep writing new and updated rows at the current time until SIGTERM."""
    from simulator.live import run_live

    if at is not None and not once:
        raise click.UsageError("--at writes one interval: add --once")
    try:
        run_live(
            get_settings().source_url,
            interval=interval,
            speed=speed,
            once=once,
            at=at,
            echo=click.echo,
        )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


@sim.group()
def inject() -> None:
    """Inject a scenario now (recorded in truth.scenarios with its start time)."""


def _run(fn_name: str, **kwargs: object) -> None:
    import psycopg

    from simulator import scenarios

    fn = getattr(scenarios, fn_name)
    try:
        with psycopg.connect(get_settings().source_url) as conn:
            fn(conn, now=int(time.time()), echo=click.echo, **kwargs)
    except (scenarios.ScenarioError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


@inject.command("demand-spike")
@click.option("--subject", required=True, help="Subject name, e.g. 'Algebra I'.")
@click.option("--factor", default=4.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--hours", default=6.0, show_default=True, type=click.FloatRange(min=0.5))
def demand_spike(subject: str, factor: float, hours: float) -> None:
    """FACTOR times the subject's demand for the next HOURS."""
    _run("demand_spike", subject=subject, factor=factor, hours=hours)


@inject.command("tutor-no-shows")
@click.option("--tutor", "tutor_id", required=True, type=int, help="Tutor id.")
@click.option("--rate", default=0.6, show_default=True, type=click.FloatRange(0, 1))
@click.option("--hours", default=168.0, show_default=True, type=click.FloatRange(min=0.5))
def tutor_no_shows(tutor_id: int, rate: float, hours: float) -> None:
    """The tutor's no-show rate jumps to RATE (recent sessions and the next HOURS)."""
    _run("tutor_no_shows", tutor_id=tutor_id, rate=rate, hours=hours)


@inject.command("support-surge")
@click.option("--factor", default=5.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--hours", default=6.0, show_default=True, type=click.FloatRange(min=0.5))
def support_surge(factor: float, hours: float) -> None:
    """FACTOR times the usual inbound support calls, now and for HOURS."""
    _run("support_surge", factor=factor, hours=hours)


@inject.command("customer-quiet")
@click.option("--customers", default=20, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--customer",
    "customer_ids",
    multiple=True,
    type=int,
    help="Customer id to go quiet (repeatable; instead of the busiest CUSTOMERS).",
)
@click.option("--hours", default=720.0, show_default=True, type=click.FloatRange(min=0.5))
def customer_quiet(customers: int, customer_ids: tuple[int, ...], hours: float) -> None:
    """The CUSTOMERS busiest active customers (or the --customer ones) cancel what they had
    booked and stop booking for HOURS (default 30 days)."""
    _run("customer_quiet", customers=customers, hours=hours, customer_ids=list(customer_ids))


@inject.command("bad-batch")
@click.option("--rows", default=50, show_default=True, type=click.IntRange(min=1))
def bad_batch(rows: int) -> None:
    """Write invalid rows (with some valid ones) as a buggy deploy would."""
    _run("bad_batch", rows=rows)
