{#-
    The int_customer_daily_activity row that holds a customer's state before `cutoff` (a SQL date expression):
    the row dated d with d < cutoff <= next_activity_date, or the customer's last row (no next activity). Its
    running totals are "everything before the cut-off"; there is at most one such row per customer.
-#}
{% macro holds_cutoff(cutoff) -%}
    activity_date < {{ cutoff }} and (next_activity_date >= {{ cutoff }} or next_activity_date is null)
{%- endmacro %}
