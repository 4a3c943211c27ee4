"""`opsdash sim generate` against real PostgreSQL: counts, ratios, truth, determinism, learnability."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner

from opsdash_core.settings import get_settings, reset_settings
from simulator.cli import sim
from simulator.generator import generate, utc_minute
from simulator.sourcedb import SOURCE_TABLES, scratch_database

pytestmark = pytest.mark.integration

SCALE, DAYS, SEED = 4000, 60, 11
HASHED = (*SOURCE_TABLES, "truth.customer_outcomes", "truth.tutor_quality", "truth.customer_latent")


@pytest.fixture(scope="module")
def market() -> Iterator[tuple[str, int]]:
    with scratch_database(get_settings().source_url, "marketplace_simtest") as url:
        end = utc_minute()
        generate(url, scale=SCALE, days=DAYS, seed=SEED, history_end=end, echo=lambda _m: None)
        yield url, end


def one(url: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()[0]


def table_hash(url: str, table: str) -> str:
    schema, _, name = table.rpartition(".")
    key = (
        "customer_id"
        if "customer" in name and schema == "truth"
        else ("tutor_id" if schema == "truth" else "id")
    )
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"select md5(string_agg(t::text, '|' order by {key})) from {table} t"
        ).fetchone()[0]


def test_row_counts_and_ratios(market: tuple[str, int]) -> None:
    url, end = market
    assert one(url, "select count(*) from customers") == SCALE
    assert one(url, "select count(*) from tutors") == SCALE // 40
    assert 35 <= one(url, "select count(*) from subjects") <= 50
    past = one(
        url,
        "select count(*) from tutoring_sessions where scheduled_at < %s",
        (datetime.fromtimestamp(end, UTC),),
    )
    assert past / DAYS == pytest.approx(SCALE * 0.03, rel=0.05)
    assert one(url, "select count(*) from truth.customer_outcomes") == SCALE
    assert one(url, "select count(*) from truth.customer_latent") == SCALE
    assert one(url, "select count(*) from truth.tutor_quality") == SCALE // 40
    assert (
        one(
            url, "select count(*) from truth.generation where seed = %s and days = %s", (SEED, DAYS)
        )
        == 1
    )
    assert one(url, "select count(*) from support.inbound_calls") > SCALE * 0.05
    rate = one(
        url,
        "select avg(churned::int) from truth.customer_outcomes "
        "where churned_at is null or churned_at > (select history_end from truth.generation)",
    )
    assert 0.15 < float(rate) < 0.30
    assert one(url, "select count(*) from tutoring_sessions where rating not between 1 and 5") == 0
    assert (
        one(
            url,
            "select count(*) from tutoring_sessions where rating is not null "
            "and status <> 'completed'",
        )
        == 0
    )
    assert one(url, "select count(distinct status) from tutoring_sessions") == 4
    causes = one(
        url, "select array_agg(distinct churn_cause) from truth.customer_outcomes where churned"
    )
    assert set(causes) == {
        "bad_sessions",
        "tutor_switching",
        "support_contacts",
        "unmet_goals",
        "random",
    }


def test_rails_timestamps_and_sequences(market: tuple[str, int]) -> None:
    url, _ = market
    for table in SOURCE_TABLES:
        assert one(url, f"select count(*) from {table} where updated_at < created_at") == 0
        assert (
            one(
                url,
                f"select count(*) from {table} where updated_at > "
                "(select history_end from truth.generation)",
            )
            == 0
        )
        top = one(url, f"select coalesce(max(id), 0) from {table}")
        assert one(url, "select nextval(pg_get_serial_sequence(%s, 'id'))", (table,)) > top


def test_same_seed_same_rows(market: tuple[str, int]) -> None:
    url, end = market
    with scratch_database(get_settings().source_url, "marketplace_simtest") as other:
        generate(other, scale=SCALE, days=DAYS, seed=SEED, history_end=end, echo=lambda _m: None)
        for table in HASHED:
            assert table_hash(url, table) == table_hash(other, table), table
        generate(
            other,
            scale=SCALE,
            days=DAYS,
            seed=SEED + 1,
            history_end=end,
            replace=True,
            echo=lambda _m: None,
        )
        assert table_hash(url, "tutoring_sessions") != table_hash(other, "tutoring_sessions")


FEATURES_SQL = """
with g as (select history_end as e from truth.generation order by id desc limit 1),
pop as (
    select c.id, o.churned, c.goal_progress_pct, c.signed_up_at
    from customers c join truth.customer_outcomes o on o.customer_id = c.id, g
    where c.status = 'active' and c.deleted_at is null and c.signed_up_at < g.e - interval '14 days'
      and (o.churned_at is null or o.churned_at > g.e)
),
s as (
    select t.customer_id,
           max(t.scheduled_at) as last_at,
           count(*) filter (where t.scheduled_at >= g.e - interval '30 days') as n30,
           avg(t.rating) filter (where t.scheduled_at >= g.e - interval '60 days') as rating,
           count(distinct t.tutor_id) filter (where t.scheduled_at >= g.e - interval '60 days')
               as tutors60,
           count(*) filter (where t.scheduled_at >= g.e - interval '60 days') as n60
    from tutoring_sessions t, g where t.scheduled_at < g.e group by t.customer_id
),
k as (
    select customer_id, count(*) as calls30
    from support.inbound_calls, g where called_at >= g.e - interval '30 days' group by 1
)
select p.churned,
       extract(epoch from g.e - greatest(coalesce(s.last_at, p.signed_up_at), p.signed_up_at))
           / 86400 as recency_days,
       coalesce(s.n30, 0), coalesce(s.rating, 4.2), coalesce(k.calls30, 0),
       greatest(coalesce(s.tutors60, 0) - 1, 0)::float / greatest(coalesce(s.n60, 0), 1),
       p.goal_progress_pct
from pop p cross join g left join s on s.customer_id = p.id left join k on k.customer_id = p.id
"""


def test_a_rule_score_from_the_tables_predicts_truth(market: tuple[str, int]) -> None:
    """Recency, frequency, ratings, calls (30 d), tutor switching and goal progress: AUC >= 0.7."""
    url, _ = market
    with psycopg.connect(url) as conn:
        rows = conn.execute(FEATURES_SQL).fetchall()
    cols = [np.array([float(r[i]) for r in rows]) for i in range(7)]
    y = cols[0].astype(bool)

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() + 1e-9)

    score = (
        0.5 * z(cols[1])
        - 0.5 * z(cols[2])
        - z(cols[3])
        + z(cols[4])
        + 0.5 * z(cols[5])
        - z(cols[6])
    )
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="stable")] = np.arange(1, len(score) + 1)
    n1 = y.sum()
    auc = (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1))
    assert len(y) > 1000
    assert auc >= 0.70


def test_cli_generate_is_idempotent_and_replace_regenerates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with scratch_database(get_settings().source_url, "marketplace_simtest") as url:
        monkeypatch.setenv("SOURCE_URL", url)
        reset_settings()
        try:
            runner = CliRunner()
            first = runner.invoke(sim, ["generate", "--scale", "500", "--days", "20"])
            assert first.exit_code == 0, first.output
            assert "tutoring_sessions" in first.output
            assert "rows/s" in first.output
            before = table_hash(url, "tutoring_sessions")
            again = runner.invoke(sim, ["generate", "--scale", "900", "--days", "20"])
            assert again.exit_code == 0
            assert "nothing written" in again.output
            assert table_hash(url, "tutoring_sessions") == before
            assert one(url, "select count(*) from customers") == 500
            replaced = runner.invoke(
                sim, ["generate", "--scale", "900", "--days", "20", "--replace"]
            )
            assert replaced.exit_code == 0, replaced.output
            assert one(url, "select count(*) from customers") == 900
            assert one(url, "select count(*) from truth.generation") == 1
        finally:
            monkeypatch.delenv("SOURCE_URL")
            reset_settings()
