{#-
    dbt's test `where` config cannot call project macros, so mart tests write the placeholder
    `__current_snapshots__`, replaced here by the filter on this run's snapshot dates
    (`snapshot_date in (...)`, from var snapshot_dates). Otherwise this is dbt's default behaviour.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__current_snapshots__' in where -%}
            {%- set where = where | replace('__current_snapshots__', current_snapshots_filter()) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
