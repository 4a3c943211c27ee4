-- Both weight sets in dbt_project.yml sum to 100 (checked at compile time, reported as rows).
{%- for name in ['risk_weights', 'risk_weights_new', 'tutor_score_weights'] %}
{%- set total = var(name).values() | sum %}
select
    '{{ name }}' as weight_set,
    {{ total }} as total
where {{ total }} <> 100
{{ 'union all' if not loop.last }}
{%- endfor %}
