"""Demand forecasting tables: the served forecasts, the backtests behind the choice of
model per subject, and the daily accuracy history.

Every forecasting run keeps its rows (keyed by `run_id`), so monitoring can compare what
was forecast before a day began with what happened; readers take the newest run.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create schema if not exists ml;
        create table if not exists ml.demand_forecasts (
            run_id text not null,
            subject_id bigint not null,
            hour_at timestamptz not null,
            yhat double precision not null check (yhat >= 0),
            yhat_lower double precision not null check (yhat_lower >= 0),
            yhat_upper double precision not null,
            model text not null,
            is_fallback boolean not null default false,
            created_at timestamptz not null default now(),
            primary key (run_id, subject_id, hour_at),
            check (yhat_lower <= yhat and yhat <= yhat_upper)
        );
        create index if not exists demand_forecasts_subject_hour_idx
            on ml.demand_forecasts (subject_id, hour_at, created_at desc);
        create index if not exists demand_forecasts_created_idx
            on ml.demand_forecasts (created_at desc);

        create table if not exists ml.forecast_backtests (
            run_id text not null,
            subject_id bigint not null,
            model text not null,
            origin_at timestamptz not null,
            mae double precision,
            wmape double precision,
            mase double precision,
            coverage double precision,
            native_coverage double precision,
            is_served boolean not null default false,
            created_at timestamptz not null default now(),
            primary key (run_id, subject_id, model, origin_at)
        );
        create index if not exists forecast_backtests_created_idx
            on ml.forecast_backtests (created_at desc);

        create table if not exists ml.model_monitoring (
            model_name text not null,
            subject_id bigint not null,
            monitored_date date not null,
            served_model text,
            hours integer not null,
            mae double precision,
            mase double precision,
            coverage double precision,
            computed_at timestamptz not null default now(),
            primary key (model_name, subject_id, monitored_date)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        "drop table if exists ml.model_monitoring;"
        " drop table if exists ml.forecast_backtests;"
        " drop table if exists ml.demand_forecasts;"
    )
