"""The test cluster runs with the sizing `opsdash up` derived for this machine."""

import psycopg

from opsdash_core.settings import get_settings
from opsdash_stack.services import postgres


def setting_bytes(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute("select pg_size_bytes(current_setting(%s))", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def test_running_cluster_uses_the_sizing_for_this_machine() -> None:
    expected = postgres.tuning(*postgres.machine_resources())
    with psycopg.connect(get_settings().warehouse_url) as conn:
        for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size"):
            want = int(expected[name].removesuffix("MB")) * 1024 * 1024
            assert setting_bytes(conn, name) == want, name
        row = conn.execute("select current_setting('checkpoint_timeout')").fetchone()
        assert row == ("15min",)
        row = conn.execute("select current_setting('wal_compression')").fetchone()
        assert row == ("lz4",)
        # The file wins over the fixed values an older release wrote into postgresql.conf.
        row = conn.execute(
            "select sourcefile from pg_settings where name = 'shared_buffers'"
        ).fetchone()
        assert row is not None
        assert row[0].endswith(postgres.TUNING_FILE)
