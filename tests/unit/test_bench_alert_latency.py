"""The alert-latency bench's scoring (no stack): receipts read from the sinks' files, alerts
matched to injections, and on a reused stack, alerts caused by scenarios injected before the
run counted as right rather than as false positives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.bench_alert_latency import Injection, report, score

T0 = 1_700_000_000.0


def sinks(home: Path) -> None:
    """One email (outbox row 5) received at T0+70 and one Slack post (row 6) at T0+65."""
    (home / "outbox" / "mail").mkdir(parents=True)
    (home / "outbox" / "slack").mkdir(parents=True)
    mail = home / "outbox" / "mail" / "1.eml"
    mail.write_text("Message-ID: <opsdash-outbox-5.1700000000@localhost>\nSubject: s\n\nb\n")
    post = home / "outbox" / "slack" / "1.json"
    post.write_text(json.dumps({"metadata": {"event_payload": {"outbox_id": 6}}}))
    os.utime(mail, (T0 + 70, T0 + 70))
    os.utime(post, (T0 + 65, T0 + 65))


def alert(
    alert_id: int, entity: str, at: float, email: list[int], slack: list[int]
) -> dict[str, object]:
    return {
        "id": alert_id,
        "rule": "demand_surge",
        "entity": entity,
        "at": at,
        "email_ids": email,
        "slack_ids": slack,
    }


def test_earlier_scenarios_alerts_are_right_and_stray_ones_false(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sinks(tmp_path)
    mine = [Injection(1, "demand-spike", T0, 6.0, {"3"})]
    earlier = [Injection(0, "demand-spike", T0 - 3600, 6.0, {"9"})]  # a previous bench's
    alerts = [
        alert(11, "3", T0 + 40, [5], [6]),
        alert(12, "9", T0 + 50, [], []),  # the earlier spike's subject, still within its 6 h
        alert(13, "4", T0 + 55, [], []),  # nobody injected anything on subject 4
    ]
    matched = score(mine, alerts, tmp_path)
    prior = score(earlier, alerts, tmp_path) - matched
    assert (matched, prior) == ({11}, {12})
    (inj,) = mine
    assert (inj.alert_at, inj.email_at, inj.slack_at) == (T0 + 40, T0 + 70, T0 + 65)

    report(mine, alerts, matched | prior, {"demand-spike"}, prior)
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("demand-spike")]
    assert "0.67   1.00" in row  # 2 of 3 alerts right, the one injection found
    assert "1 of them to scenarios injected before this run" in row
    assert "false positive: alert 13 demand_surge 4" in out
    assert "alert 12" not in out
