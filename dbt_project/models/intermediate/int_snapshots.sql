-- One row per snapshot date requested by the `snapshot_dates` var (midnight UTC cut-offs), numbered in date
-- order. The marts map every cut-off they need (T, and T minus each window) onto these numbers.
{%- set dates = snapshot_date_list() %}

with

requested as (

    {% if dates | length == 0 -%}
    select null::date as snapshot_date
    where false
    {%- else -%}
    select cast(snapshot_date as date) as snapshot_date
    from (
        values
        {%- for d in dates %}
            ('{{ d }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as requested_dates (snapshot_date)
    {%- endif %}

),

numbered as (

    select
        snapshot_date,
        row_number() over (order by snapshot_date)::integer as snapshot_index
    from requested

)

select * from numbered
