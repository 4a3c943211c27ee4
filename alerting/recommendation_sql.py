"""The statements of a generation pass (`recommendations.generate_recommendations`).

Reads of the marts and churn scores, and the writes to `app.recommendations` and
`app.recommendation_events`; every value is a bound parameter.
"""

LOCK_SQL = "select pg_advisory_xact_lock(hashtext('opsdash.recommendations.generate'))"
EXISTS_SQL = "select to_regclass(%s) is not null"

CUSTOMERS_SQL = """
select
    h.customer_id,
    h.risk_score,
    h.risk_tier,
    h.top_risk_component,
    h.days_since_last_session,
    h.sessions_30d,
    h.sessions_prev_30d,
    h.avg_rating_30d,
    h.inbound_calls_30d,
    h.cancellation_requests_30d,
    h.tutor_switches_90d,
    h.goal_progress_pct,
    h.tenure_days,
    s.churn_probability,
    s.top_factors
from marts.customer_health as h
left join ml.churn_scores as s
    on
        h.customer_id = s.customer_id
        and s.scored_at = (select max(scored_at) from ml.churn_scores)
where h.risk_tier in ('high', 'critical')
"""

TUTORS_SQL = """
select tutor_id, success_score, sessions_scheduled_30d, is_underperforming, underperforming_reason
from marts.tutor_performance
where is_underperforming
"""

SUPPLY_SQL = """
select
    subject_id,
    subject_name,
    hour_at,
    hours_ahead,
    forecast_requested_sessions,
    available_tutor_hours,
    forecast_supply_gap
from marts.demand_supply_gaps_hourly
where is_gap_expected and hours_ahead < %s
"""

OPEN_SQL = """
select id, entity_type, entity_id, rec_type, reason_code, status, reason, action, priority,
    details, expires_at
from app.recommendations
where status = any(%s) and rec_type = any(%s)
for update
"""

RECENT_SQL = """
select entity_type, entity_id, rec_type, reason_code, status, created_at, updated_at
from app.recommendations
where
    rec_type = any(%(types)s)
    and (
        created_at >= %(enrolled_since)s
        or (status in ('accepted', 'dismissed', 'expired') and updated_at >= %(closed_since)s)
    )
"""

REFRESH_SQL = """
update app.recommendations
set
    reason = %(reason)s,
    action = %(action)s,
    priority = %(priority)s,
    details = %(details)s,
    expires_at = case when entity_type = 'subject' then %(expires_at)s else expires_at end,
    updated_at = %(now)s
where id = %(id)s
"""

INSERT_SQL = """
insert into app.recommendations (
    entity_type, entity_id, rec_type, reason_code, reason, action, priority, owner_role,
    status, details, due_at, expires_at, created_at, updated_at, source_alert_id
)
values (
    %(entity_type)s, %(entity_id)s, %(rec_type)s, %(reason_code)s, %(reason)s, %(action)s,
    %(priority)s, %(owner_role)s, 'active', %(details)s, %(due_at)s, %(expires_at)s, %(now)s,
    %(now)s,
    -- the entity's newest live alert, so the app links the recommendation to what raised it
    (
        select a.id
        from app.alerts as a
        where
            a.entity_type = %(entity_type)s
            and a.entity_id = %(entity_id)s
            and a.status in ('open', 'acknowledged')
        order by a.created_at desc, a.id desc
        limit 1
    )
)
on conflict (entity_type, entity_id, rec_type, reason_code)
where status in ('active', 'snoozed') do nothing
returning *
"""

CREATED_EVENT_SQL = """
insert into app.recommendation_events
    (recommendation_id, from_status, to_status, actor, actor_type, comment, at)
values (%s, null, 'active', 'system', 'system', %s, %s)
"""

# A status change made by the pipeline, set-based: which rows, to what, with which comment.
SYSTEM_TRANSITION_SQL = """
with due as (
    select id, status
    from app.recommendations
    where {where}
    for update
),

changed as (
    update app.recommendations as r
    set status = %(to_status)s, snoozed_until = null, updated_at = %(now)s
    from due
    where r.id = due.id
    returning r.*, due.status as from_status
),

logged as (
    insert into app.recommendation_events
        (recommendation_id, from_status, to_status, actor, actor_type, comment, at)
    select id, from_status, status, 'system', 'system', %(comment)s, %(now)s
    from changed
)

select * from changed
"""
EXPIRED_WHERE = "status = any(%(open)s) and expires_at <= %(now)s"
SNOOZE_OVER_WHERE = "status = 'snoozed' and snoozed_until <= %(now)s"
CLEARED_WHERE = "id = any(%(ids)s)"
