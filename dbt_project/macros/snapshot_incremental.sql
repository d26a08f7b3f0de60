{#-
    An incremental model written a few snapshot dates at a time.

    The model names, in config `snapshot_select`, a macro that returns its SQL for a list of snapshot dates, and
    selects the run's dates (var snapshot_dates) through it, so `dbt compile`, `dbt show` and the unit tests see the
    whole model. The materialization calls the macro again for each batch of `snapshots_per_statement` dates: one
    statement deletes the batch's dates, one inserts its rows, and every batch is in one transaction, so a run
    replaces exactly the dates it was given, or nothing if it fails.

    Why: DuckDB holds a statement's join state until the statement ends. A model that joins once per snapshot, in
    one statement for all of a run's dates, held every snapshot's joins at once, and its memory grew with the
    length of the run (docs/performance.md). A batch holds its own dates' only, and nothing is written twice (no
    temporary table).

    Other configs: `unique_key` (the snapshot date column), `on_schema_change` as for dbt's incremental models,
    and `full_refresh` (a full refresh drops the table first).
-#}
{% materialization snapshot_incremental, adapter='duckdb' %}

    {%- set key = config.require('unique_key') -%}
    {%- set select_for = context[config.require('snapshot_select')] -%}
    {%- set per_statement = config.require('snapshots_per_statement') | int -%}
    {%- set dates = snapshot_date_list() -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set on_schema_change = incremental_validate_on_schema_change(config.get('on_schema_change'), default='ignore') -%}
    {%- set grant_config = config.get('grants') -%}
    {%- set no_rows -%}
        select * from ({{ select_for([]) }}) as no_snapshot where false
    {%- endset -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set full_refresh = should_full_refresh() or (existing_relation is not none and existing_relation.is_view) -%}
    {%- if existing_relation is not none and full_refresh -%}
        {{ adapter.drop_relation(existing_relation) }}
        {%- set existing_relation = none -%}
    {%- endif -%}

    {%- if existing_relation is none -%}
        {%- call statement('create_empty') -%}
            {{ create_table_as(False, target_relation, no_rows) }}
        {%- endcall -%}
        {%- set dest_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- else -%}
        {#- the model's columns now against the table's, judged by on_schema_change as dbt's incremental does -#}
        {%- set temp_relation = make_temp_relation(target_relation) -%}
        {%- call statement('columns_of_the_model') -%}
            {{ create_table_as(True, temp_relation, no_rows) }}
        {%- endcall -%}
        {%- set dest_columns = process_schema_changes(on_schema_change, temp_relation, existing_relation) -%}
        {%- if not dest_columns -%}
            {%- set dest_columns = adapter.get_columns_in_relation(existing_relation) -%}
        {%- endif -%}
        {{ adapter.drop_relation(temp_relation) }}
    {%- endif -%}
    {%- set column_list = get_quoted_csv(dest_columns | map(attribute='name')) -%}

    {%- set batches = dates | batch(per_statement) | list -%}
    {%- for batch in batches -%}
        {%- call statement('delete_' ~ loop.index) -%}
            delete from {{ target_relation }}
            where {{ key }} in ({{ snapshot_date_sql_list(batch) }})
        {%- endcall -%}
        {%- call statement('main' if loop.last else 'insert_' ~ loop.index) -%}
            insert into {{ target_relation }} ({{ column_list }})
            select {{ column_list }} from ({{ select_for(batch) }}) as snapshot_batch
        {%- endcall -%}
    {%- endfor -%}
    {%- if not batches -%}
        {%- call statement('main') -%}
            select 0 as rows_written
        {%- endcall -%}
    {%- endif -%}

    {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke(existing_relation, full_refresh)) %}
    {% do persist_docs(target_relation, model) %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
