{#-
    The snapshot dates this run builds, from the `snapshot_dates` var.

    Accepts a list (strings or YAML dates) or one comma-separated string. Returns sorted, de-duplicated
    'YYYY-MM-DD' strings; anything else fails the run rather than being pasted into SQL.
-#}
{% macro snapshot_date_list() -%}
    {%- set raw = var('snapshot_dates', []) -%}
    {%- if raw is none -%}
        {%- set raw = [] -%}
    {%- elif raw is string -%}
        {%- set raw = raw.split(',') -%}
    {%- endif -%}
    {%- set dates = [] -%}
    {%- for value in raw -%}
        {%- set text = (value | string) | trim -%}
        {%- if text -%}
            {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
                {{ exceptions.raise_compiler_error("snapshot_dates: expected 'YYYY-MM-DD', got " ~ (value | string)) }}
            {%- endif -%}
            {%- if text not in dates -%}
                {%- do dates.append(text) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(dates | sort) }}
{%- endmacro %}


{#- A SQL list of the snapshot dates of this run, for `snapshot_date in (...)`; `null` when there are none. -#}
{% macro snapshot_date_sql_list() -%}
    {%- set dates = snapshot_date_list() -%}
    {%- if dates | length == 0 -%}
        null
    {%- else -%}
        {%- for d in dates -%}
            date '{{ d }}'{{ ", " if not loop.last }}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- Filter for data tests on the marts: only the rows this run wrote, so `dbt build` stays cheap. -#}
{% macro current_snapshots_filter() -%}
    snapshot_date in ({{ snapshot_date_sql_list() }})
{%- endmacro %}


{#- `data_end` var as a SQL date expression, or none when it is null/absent (then derived from the data). -#}
{% macro data_end_var_sql() -%}
    {%- set raw = var('data_end', none) -%}
    {%- if raw is none or (raw | string | trim) in ('', 'none', 'None', 'null') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = (raw | string) | trim -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {{ exceptions.raise_compiler_error("data_end: expected 'YYYY-MM-DD' or null, got " ~ text) }}
    {%- endif -%}
    {{ return("date '" ~ text ~ "'") }}
{%- endmacro %}


{#- A non-negative integer var, validated so that it can be pasted into SQL. -#}
{% macro int_var(name) -%}
    {%- set text = var(name) | string | trim -%}
    {%- if not modules.re.fullmatch('[0-9]+', text) -%}
        {{ exceptions.raise_compiler_error(name ~ ": expected a non-negative integer, got " ~ text) }}
    {%- endif -%}
    {{ return(text | int) }}
{%- endmacro %}
