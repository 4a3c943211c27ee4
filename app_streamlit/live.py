"""Live parts of every page: data sections that refresh on a timer, and toasts for new alerts.

A section is a `st.fragment(run_every=...)`, so the timer reruns only that section, not the
page. The interval is decided per run: the sidebar's "Live refresh" toggle (kept in session
state) pauses every section by rendering it without a timer. Each section says when it was last
updated, in UTC, so a paused page is never mistaken for a live one.

New alerts arrive as events on the Redis stream (`opsdash_core.events`); a small fragment reads
what came after the last id this session saw (kept in session state) every few seconds and
shows a toast per new alert. It starts at the stream's current end, so logging in does not
replay old alerts. When Redis is down it reads nothing (the tables still refresh).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import streamlit as st
from psycopg_pool import PoolTimeout

from app_streamlit.view_text import markdown_text
from opsdash_core import events

REFRESH_S = 30
TOAST_POLL_S = 5
MAX_TOASTS = 5
SECTION_DOWN = (
    "The database is not reachable right now ({error}); this section tries again on its next "
    "refresh."
)
LIVE_KEY = "live_refresh"
LAST_EVENT_KEY = "live_last_event_id"
SEVERITY_ICONS = {
    "critical": ":material/error:",
    "warning": ":material/warning:",
    "info": ":material/info:",
}


def is_live() -> bool:
    return bool(st.session_state.get(LIVE_KEY, True))


def refresh_toggle() -> None:
    """The pause/resume switch (sidebar); its state is shared by every section of the session."""
    st.toggle(
        "Live refresh",
        value=is_live(),
        key=LIVE_KEY,
        help=f"Reload the data sections every {REFRESH_S} s. Turn off to pause.",
    )


def updated_caption(now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    state = "" if is_live() else " · live refresh paused"
    st.caption(f"Updated {now.astimezone(UTC):%H:%M:%S} UTC{state}")


def section(body: Callable[[], None], *, key: str, every_s: int = REFRESH_S) -> None:
    """Render `body` as a fragment that reruns every `every_s` seconds while live refresh is on."""

    def run() -> None:
        try:
            body()
        except (psycopg.Error, PoolTimeout) as exc:  # a timer rerun is outside the page's guard
            st.warning(SECTION_DOWN.format(error=type(exc).__name__), icon=":material/cloud_off:")
        updated_caption()

    run.__qualname__ = f"live_section_{key}"  # one fragment identity per section
    st.fragment(run, run_every=every_s if is_live() else None)()


def toast_text(event: events.Event) -> tuple[str, str] | None:
    """The toast (text, icon) for one stream event, or None if it is not a new alert.

    `st.toast` renders Markdown: the title (data: an entity's name can be in it) is escaped so
    it shows literally, and only known severities and integer ids reach the text."""
    if event.type != "alert_created":
        return None
    data = event.data
    severity = str(data.get("severity") or "info")
    if severity not in SEVERITY_ICONS:
        severity = "info"
    title = markdown_text(str(data.get("title") or data.get("rule") or "New alert"))
    alert_id = data.get("alert_id") or data.get("id")
    suffix = f" (#{alert_id})" if isinstance(alert_id, int) or str(alert_id).isdigit() else ""
    return f"New {severity} alert: {title}{suffix}", SEVERITY_ICONS[severity]


def _poll_events() -> None:
    state = st.session_state
    if LAST_EVENT_KEY not in state:
        state[LAST_EVENT_KEY] = events.latest_id()
        return
    new = events.read_since(state[LAST_EVENT_KEY], count=100)
    if not new:
        return
    state[LAST_EVENT_KEY] = new[-1].id
    toasts = [t for t in (toast_text(e) for e in new) if t is not None]
    for text, icon in toasts[:MAX_TOASTS]:
        st.toast(text, icon=icon or None, duration="long")
    if len(toasts) > MAX_TOASTS:
        st.toast(f"{len(toasts) - MAX_TOASTS} more new alerts", icon=":material/notifications:")


def alert_toasts(every_s: int = TOAST_POLL_S) -> None:
    """Poll the event stream every `every_s` seconds (even while data refresh is paused)."""
    st.fragment(_poll_events, run_every=every_s)()


def _rerun_on_timer() -> None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None and ctx.fragment_ids_this_run:  # the timer fired, not the first draw
        st.rerun(scope="app")


def retry_soon(every_s: int = 10) -> None:
    """Rerun the whole page in `every_s` seconds (after an outage message), without a click."""
    st.fragment(_rerun_on_timer, run_every=every_s)()
