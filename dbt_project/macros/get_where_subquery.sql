{#-
    dbt's test `where` config cannot call project macros, so tests write placeholders, replaced here:
    - `__current_snapshots__`: the mart rows of this run's snapshot dates (var snapshot_dates);
    - `__landed_rows__`: the staging rows of the landing days this run reads for the first time (var landing_from);
    - `__recomputed_activity__`: the activity rows this run recomputed (var activity_from).
    A weekly build thus tests what it wrote, not the whole history. Otherwise this is dbt's default behaviour.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__current_snapshots__' in where -%}
            {%- set where = where | replace('__current_snapshots__', current_snapshots_filter()) -%}
        {%- endif -%}
        {%- if '__landed_rows__' in where -%}
            {%- set where = where | replace('__landed_rows__', from_date_filter('landing_from', '_partition_date')) -%}
        {%- endif -%}
        {%- if '__recomputed_activity__' in where -%}
            {%- set where = where | replace('__recomputed_activity__', from_date_filter('activity_from', 'activity_date')) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
