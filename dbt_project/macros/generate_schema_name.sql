{#-
    Use a model's custom schema as-is (staging, intermediate, marts) instead of dbt's default
    `<target schema>_<custom schema>`. Schema `main` (the target default) is left to the analyst views that
    another component creates over the Delta gold tables, so every model here must set a custom schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
