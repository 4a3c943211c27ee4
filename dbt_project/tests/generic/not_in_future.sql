{#- Rows stamped later than now (plus a small allowance for clock skew between hosts). -#}
{% test not_in_future(model, column_name, allowance='5 minutes') %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} > now() + interval '{{ allowance }}'
{% endtest %}
