"""`opsdash outbox list|requeue|deliver|digest` and `opsdash watchdog`: the notification outbox
from the command line, and the alerting watchdog loop that `opsdash up` starts."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

log = logging.getLogger(__name__)


@click.group()
def outbox() -> None:
    """Inspect and re-drive the notification outbox (email and Slack)."""


@outbox.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "sending", "sent", "failed", "given_up", "digest", "folded"]),
    default=None,
    help="Only rows in this state (given_up: what the outbox stopped trying).",
)
@click.option("--limit", type=int, default=50, show_default=True)
def outbox_list(status: str | None, limit: int) -> None:
    """List outbox rows, newest first."""
    from opsdash_core.db import warehouse
    from opsdash_core.notify import list_outbox

    with warehouse() as conn:
        rows = list_outbox(conn, status=status, limit=limit)
    if not rows:
        click.echo("no notifications" + (f" in state {status}" if status else ""))
        return
    for r in rows:
        when = r["given_up_at"] or r["sent_at"] or r["created_at"]
        click.echo(
            f"{r['id']:>7} {r['channel']:<5} {r['status']:<8} {r['severity'] or '-':<8} "
            f"{r['kind']:<8} attempts={r['attempts']:<3} {when:%Y-%m-%d %H:%M} {r['subject']}"
        )
        if r["last_error"] and r["status"] in ("pending", "given_up", "failed"):
            click.echo(f"        last error: {r['last_error'][:200]}")


@outbox.command("requeue")
@click.option("--id", "ids", type=int, multiple=True, help="Outbox id (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Every given-up notification.")
def outbox_requeue(ids: tuple[int, ...], all_: bool) -> None:
    """Send given-up notifications again (same Message-ID; the give-up clock restarts)."""
    from opsdash_core.db import warehouse
    from opsdash_core.notify import requeue_notifications

    if bool(ids) == all_:
        raise click.UsageError("give either --id N (repeatable) or --all")
    with warehouse() as conn:
        done = requeue_notifications(conn, ids=list(ids) if ids else None, actor="cli")
    missing = sorted(set(ids) - set(done))
    click.echo(f"requeued {len(done)} notification(s)" + (f": {done}" if done else ""))
    if missing:
        raise click.ClickException(f"not requeued (unknown, or not given up/failed): {missing}")


@outbox.command("deliver")
def outbox_deliver() -> None:
    """Run one delivery pass now (the Dagster outbox sensor does this every minute)."""
    from opsdash_core.notify import deliver_pending

    report = deliver_pending()
    click.echo(report.summary())
    for outbox_id, error in report.errors.items():
        click.echo(f"  {outbox_id}: {error}")


@outbox.command("digest")
def outbox_digest() -> None:
    """Fold the parked info notifications into one digest email now (normally daily)."""
    from opsdash_core.db import warehouse
    from opsdash_core.notify import build_daily_digest

    with warehouse() as conn:
        digest_id = build_daily_digest(conn)
    click.echo("nothing waited for the digest" if digest_id is None else f"digest {digest_id}")


@click.command("watchdog")
@click.option("--once", is_flag=True, help="Check once and exit (cron, tests).")
@click.option("--interval", type=float, default=60.0, show_default=True, help="Seconds.")
def watchdog(once: bool, interval: float) -> None:
    """Email (directly, not through Dagster) when the alert sensors stop ticking."""
    from opsdash_core.db import warehouse
    from opsdash_core.settings import get_settings
    from opsdash_core.watchdog import check_sensors

    def check() -> None:
        try:
            with warehouse() as conn:
                result = check_sensors(conn, get_settings())
            click.echo(f"watchdog: {result.describe()}")
        except Exception:  # a database or SMTP outage must not end the watchdog
            log.exception("watchdog: check failed; trying again in %.0fs", interval)

    if once:
        check()
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("watchdog: signal %d, stopping", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    while not stop.is_set():
        check()
        stop.wait(interval)
