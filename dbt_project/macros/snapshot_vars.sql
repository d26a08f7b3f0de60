{#-
    A run's value of var `name`: the environment variable ASSAY_DBT_<NAME> when set (how the orchestrator passes
    a run's partition), else the var (`--vars`, or the default in dbt_project.yml).

    The variable is read only when dbt executes. A changed `--vars` makes dbt parse the whole project again, and an
    environment variable read while parsing makes it re-parse every file that reached it, on every run whose
    partition differs; parsing only needs the defaults.
-#}
{% macro assay_var(name, default=none) -%}
    {%- set from_env = env_var('ASSAY_DBT_' ~ (name | upper), '') if execute else '' -%}
    {%- if from_env != '' -%}
        {{ return(from_env) }}
    {%- endif -%}
    {{ return(var(name, default)) }}
{%- endmacro %}


{#-
    The snapshot dates this run builds, from the `snapshot_dates` var.

    Accepts a list (strings or YAML dates) or one comma-separated string. Returns sorted, de-duplicated
    'YYYY-MM-DD' strings; anything else fails the run rather than being pasted into SQL.
-#}
{% macro snapshot_date_list() -%}
    {%- set raw = assay_var('snapshot_dates', []) -%}
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


{#- A SQL list of snapshot dates (default: this run's), for `snapshot_date in (...)`; `null` when there are none. -#}
{% macro snapshot_date_sql_list(dates=none) -%}
    {%- set dates = snapshot_date_list() if dates is none else dates -%}
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


{#- An optional date var ('YYYY-MM-DD') as a SQL date literal; none when it is null or absent. -#}
{% macro date_var_sql(name) -%}
    {%- set raw = assay_var(name, none) -%}
    {%- if raw is none or (raw | string | trim) in ('', 'none', 'None', 'null') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = (raw | string) | trim -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {{ exceptions.raise_compiler_error(name ~ ": expected 'YYYY-MM-DD' or null, got " ~ text) }}
    {%- endif -%}
    {{ return("date '" ~ text ~ "'") }}
{%- endmacro %}


{#- `data_end` var as a SQL date expression, or none when it is null/absent (then derived from the data). -#}
{% macro data_end_var_sql() -%}
    {{ return(date_var_sql('data_end')) }}
{%- endmacro %}


{#- A non-negative integer var, validated so that it can be pasted into SQL. -#}
{% macro int_var(name) -%}
    {%- set text = assay_var(name) | string | trim -%}
    {%- if not modules.re.fullmatch('[0-9]+', text) -%}
        {{ exceptions.raise_compiler_error(name ~ ": expected a non-negative integer, got " ~ text) }}
    {%- endif -%}
    {{ return(text | int) }}
{%- endmacro %}


{#-
    The `activity_from` var as a SQL date literal: int_customer_daily_activity recomputes its rows from this day
    on, because a bronze landing day that changed since its last build holds activity on or after it. None
    when nothing changed (an incremental run then leaves the table as it is). The orchestrator works it out
    from the Delta file listings (assets/features/activity.py); a first build ignores it and reads everything.
-#}
{% macro activity_from_sql() -%}
    {{ return(date_var_sql('activity_from')) }}
{%- endmacro %}


{#-
    Which rows of a source an activity run reads, as a predicate: all on a first build; on an incremental one those
    with `ts_column` on or after `activity_from` (none when nothing changed).

    `on_landing_day`: `ts_column` is the source's contract time column, which ingestion keeps inside the row's
    landing day (a row outside it is quarantined), so a row on or after `activity_from` sits in a landing day on or
    after it too. The same bound on `_partition_date` lets delta_scan skip the older days' files, which a filter on
    the timestamp alone does not (every file of the table is opened).
-#}
{% macro activity_source_predicate(ts_column, on_landing_day=false) -%}
    {%- if not is_incremental() -%}
        true
    {%- elif activity_from_sql() is none -%}
        false
    {%- else -%}
        {{ ts_column }} >= cast({{ activity_from_sql() }} as timestamptz)
        {%- if on_landing_day %} and _partition_date >= {{ activity_from_sql() }}{% endif %}
    {%- endif -%}
{%- endmacro %}


{#-
    Incremental strategy `activity_recompute` of int_customer_daily_activity. The model's new rows (`temp_relation`)
    are the rows from `activity_from` on, recomputed, and each changed customer's last row before that day (its
    "base" row) with its new next_activity_date. So the table's rows from `activity_from` on go, and the old copy
    of every base row.

    Why not `delete+insert` on (customer_id, activity_date): its delete joins the whole table to the new rows. A
    base row is a row before `activity_from` that holds the cut-off `activity_from` (next_activity_date on or after
    it, or none), and the table is stored in next_activity_date order, so this filter lets DuckDB skip every row
    group but the last few (docs/performance.md). Runs inside the model's transaction, after the new rows are built.
-#}
{% macro get_incremental_activity_recompute_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set from_date = activity_from_sql() -%}
    {%- if from_date is not none %}
    delete from {{ target }} where activity_date >= {{ from_date }};

    delete from {{ target }}
    where activity_date < {{ from_date }}
        and (next_activity_date >= {{ from_date }} or next_activity_date is null)
        and (customer_id, activity_date) in (select customer_id, activity_date from {{ source }});
    {%- endif %}

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}


{#- Test filter: `column` on or after the date var `name`; every row when the var is null (a full build). -#}
{% macro from_date_filter(name, column) -%}
    {%- set from_date = date_var_sql(name) -%}
    {%- if from_date is none -%}
        true
    {%- else -%}
        {{ column }} >= {{ from_date }}
    {%- endif -%}
{%- endmacro %}
