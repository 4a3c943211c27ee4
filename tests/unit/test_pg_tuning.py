"""PostgreSQL sizing for the machine `opsdash up` runs on (pure arithmetic, no server)."""

from pathlib import Path

import pytest

from opsdash_stack.services import postgres

GIB = 1024**3


def mb(value: str) -> int:
    assert value.endswith("MB"), value
    return int(value[:-2])


def test_this_machine_size_two_cores_24_gib() -> None:
    t = postgres.tuning(24 * GIB, 2)
    assert t["shared_buffers"] == "4096MB"  # a quarter would be 6 GiB: capped
    assert t["effective_cache_size"] == "18432MB"
    assert t["work_mem"] == "64MB"
    assert t["maintenance_work_mem"] == "1024MB"
    assert t["max_wal_size"] == "4096MB"
    assert t["checkpoint_timeout"] == "15min"
    assert t["checkpoint_completion_target"] == "0.9"
    assert t["wal_compression"] == "lz4"
    # no replica, no archive: what dbt creates is not also written to the WAL
    assert (t["wal_level"], t["max_wal_senders"]) == ("minimal", "0")
    assert t["max_parallel_workers_per_gather"] == "1"
    assert t["max_parallel_workers"] == "2"


def test_small_machine_gets_a_quarter_and_floors() -> None:
    t = postgres.tuning(2 * GIB, 1)
    assert t["shared_buffers"] == "512MB"
    assert t["work_mem"] == "8MB"
    assert t["maintenance_work_mem"] == "128MB"
    assert t["max_wal_size"] == "1024MB"  # floor: a quarter of 2 GiB is below it
    assert t["max_parallel_workers"] == "2"
    tiny = postgres.tuning(256 * 1024 * 1024, 1)
    assert tiny["shared_buffers"] == "128MB"
    assert tiny["work_mem"] == "4MB"


@pytest.mark.parametrize("ram_gib", [1, 4, 8, 16, 64, 512])
@pytest.mark.parametrize("cores", [1, 2, 8, 64])
def test_no_setting_lets_one_process_near_8_gib(ram_gib: int, cores: int) -> None:
    t = postgres.tuning(ram_gib * GIB, cores)
    assert mb(t["shared_buffers"]) <= min(4096, max(128, ram_gib * 1024 // 4))
    assert mb(t["maintenance_work_mem"]) <= 1024
    assert mb(t["work_mem"]) <= 64
    assert mb(t["min_wal_size"]) < mb(t["max_wal_size"])
    assert 1 <= int(t["max_parallel_workers_per_gather"]) <= int(t["max_parallel_workers"]) <= 8


def test_written_file_is_included_last_and_rewritten_only_on_change(tmp_path: Path) -> None:
    conf = tmp_path / "postgresql.conf"
    conf.write_text("shared_buffers = 1GB\n")  # what an older release wrote
    values = postgres.write_tuning(tmp_path)
    text = conf.read_text()
    assert text.rstrip().endswith(postgres.INCLUDE_LINE)
    written = (tmp_path / postgres.TUNING_FILE).read_text()
    assert f"shared_buffers = '{values['shared_buffers']}'" in written
    assert oct((tmp_path / postgres.TUNING_FILE).stat().st_mode & 0o777) == "0o600"
    postgres.write_tuning(tmp_path)
    assert conf.read_text().count(postgres.INCLUDE_LINE) == 1
