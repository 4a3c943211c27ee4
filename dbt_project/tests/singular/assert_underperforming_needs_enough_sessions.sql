-- A tutor is flagged only when judged (enough sessions), and always with a reason.
select
    tutor_id,
    is_judged,
    is_underperforming,
    underperforming_reason
from {{ ref('tutor_performance') }}
where
    (is_underperforming and not is_judged)
    or (is_underperforming and underperforming_reason is null)
    or (not is_underperforming and underperforming_reason is not null)
