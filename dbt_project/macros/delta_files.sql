{#-
    The Delta log's file listing of a bronze source (DuckDB's `delta_list_files`: one row per data file, with its
    partition values and row count), read from the path the source's `delta_scan` reads. A question about the
    landing days alone (the newest one, say) is answered from the log this way, without opening the data files.
-#}
{% macro delta_files(relation) -%}
    {%- set scan = relation | string | trim -%}
    {#- while dbt parses, a source renders as a placeholder name: the check waits for the run -#}
    {%- if execute and not scan.startswith("delta_scan(") -%}
        {{ exceptions.raise_compiler_error("delta_files: expected a delta_scan(...) source, got " ~ scan) }}
    {%- endif -%}
    delta_list_files{{ scan[10:] }}
{%- endmacro %}
