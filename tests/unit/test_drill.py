"""The fault drill's own bookkeeping (bench/drill.py): how it reads the sinks' files and the
causes Dagster recorded. The drill itself needs a running stack and is not run here."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from bench.drill import first_error, sink_files


def test_sink_files_count_each_message_id_and_outbox_id(tmp_path: Path) -> None:
    mail, slack = tmp_path / "outbox" / "mail", tmp_path / "outbox" / "slack"
    mail.mkdir(parents=True)
    slack.mkdir(parents=True)
    for i, mid in enumerate(["<opsdash-outbox-1.1@x>", "<opsdash-outbox-2.1@x>"] * 2 + ["<a@x>"]):
        msg = EmailMessage()
        msg["Message-ID"] = mid
        msg.set_content("body")
        (mail / f"{i}.eml").write_bytes(msg.as_bytes())
    for i, oid in enumerate([3, 3, 4]):
        body = {"text": "t", "metadata": {"event_payload": {"outbox_id": oid}}}
        (slack / f"{i}.json").write_text(json.dumps(body))
    (slack / "broken.json").write_text("{not json")
    (slack / "untagged.json").write_text(json.dumps({"text": "no metadata"}))

    mails, posts = sink_files(tmp_path)

    assert mails == {"<opsdash-outbox-1.1@x>": 2, "<opsdash-outbox-2.1@x>": 2, "<a@x>": 1}
    assert posts == {3: 2, 4: 1}


def test_first_error_is_the_recorded_cause_first_line() -> None:
    event = {
        "__class__": "EventLogEntry",
        "dagster_event": {
            "event_specific_data": {
                "error": {
                    "__class__": "SerializableErrorInfo",
                    "message": "\nMlflowException: API request failed\n  at line 3\n",
                    "cause": None,
                }
            }
        },
    }
    assert first_error(json.dumps(event)) == "MlflowException: API request failed"
    assert first_error("not json") == ""
    assert first_error(json.dumps({"user_message": "run failed"})) == "run failed"


def test_an_engine_event_without_an_error_is_no_cause() -> None:
    engine = {"user_message": "Executing steps in process (pid: 335)", "dagster_event": {}}
    assert first_error(json.dumps(engine), fallback=False) == ""
    assert first_error(json.dumps(engine)) == "Executing steps in process (pid: 335)"
