{#-
    Map spans of days onto the requested snapshots they contain.

    `spans` is a relation (CTE name) with columns span_start and span_end (dates) plus the `columns` to carry.
    A span holds for every snapshot T with span_start < T <= span_end. Returns, for each span containing at
    least one snapshot, the carried columns plus first_snapshot_index and last_snapshot_index: the snapshots
    it holds for are exactly that (inclusive) range of int_snapshots.snapshot_index. Spans with a null end, or
    outside the snapshot range, yield nothing.

    int_snapshot_calendar counts the snapshots on or before each day, so the range is
    (count at span_start, count at span_end], found with two equality joins on a calendar of a few hundred
    days instead of a range join of spans against snapshots. The span ends are clamped onto the calendar in
    their own projection, so that the joins stay plain equality joins.
-#}
{% macro snapshot_index_ranges(spans, columns) -%}
    select
        {%- for column in columns %}
        clamped.{{ column }},
        {%- endfor %}
        span_first.snapshots_to_date + 1 as first_snapshot_index,
        span_last.snapshots_to_date as last_snapshot_index

    from (

        select
            {{ spans }}.*,
            greatest({{ spans }}.span_start, bounds.first_day) as clamped_start,
            least({{ spans }}.span_end, bounds.last_day) as clamped_end
        from {{ spans }}
        cross join (
            select min(calendar_date) as first_day, max(calendar_date) as last_day
            from {{ ref('int_snapshot_calendar') }}
        ) as bounds
        where {{ spans }}.span_start < bounds.last_day
            and {{ spans }}.span_end > bounds.first_day

    ) as clamped
    inner join {{ ref('int_snapshot_calendar') }} as span_first
        on span_first.calendar_date = clamped.clamped_start
    inner join {{ ref('int_snapshot_calendar') }} as span_last
        on span_last.calendar_date = clamped.clamped_end
    where span_first.snapshots_to_date < span_last.snapshots_to_date
{%- endmacro %}


{#-
    Index, per customer, contiguous snapshot-number ranges by snapshot.

    `ranges` is a list (sorted by first_snapshot_index) of structs {first_snapshot_index, last_snapshot_index,
    value} that follow each other without gaps, as the spans of one customer's consecutive activity rows do.
    The result holds, for each snapshot from the first range's start on, the position of its range in
    `ranges` (repeated over the range). Read values with `value_at_snapshot`.
-#}
{% macro snapshot_array(ranges) -%}
    flatten(list_transform(
        {{ ranges }},
        (r, position) -> list_resize([position], r.last_snapshot_index - r.first_snapshot_index + 1, position)
    ))
{%- endmacro %}


{#- The value of the range holding snapshot `index` (see `snapshot_array`); null before the first range. -#}
{% macro value_at_snapshot(array, ranges, index) -%}
    case
        when {{ index }} >= {{ ranges }}[1].first_snapshot_index
            then {{ ranges }}[{{ array }}[{{ index }} - {{ ranges }}[1].first_snapshot_index + 1]].value
    end
{%- endmacro %}
