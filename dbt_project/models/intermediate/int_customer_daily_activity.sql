{{ config(
    materialized='incremental',
    incremental_strategy='activity_recompute',
) }}
-- One row per customer and UTC day on which the customer did anything: ordered, browsed (help-centre visits
-- counted apart as well), was sent a campaign message, opened or clicked one. Besides the day's counts it
-- carries running totals (`cum_*`, including the day itself) and the first and last order/event day so far, so
-- that a snapshot at T can read "everything before T" from the customer's last activity row before T, and a
-- window [T - w, T) as the difference of two such rows. The marts find those rows through next_activity_date:
-- a row holds the customer's state for every cut-off in (activity_date, next_activity_date].
--
-- Incremental, so that a weekly run costs what the week brought rather than the whole history: rows from
-- `activity_from` on are recomputed from the sources, each customer's running totals carried on from their last
-- row before that day (the "base" row, which gets its new next_activity_date); the strategy `activity_recompute`
-- (macros/snapshot_vars.sql) swaps them in.
with

orders as (

    select
        customer_id,
        order_date as activity_date,
        'order' as activity,
        amount,
        n_items
    from {{ ref('stg_orders') }}
    where {{ activity_source_predicate('order_ts', on_landing_day=true) }}

),

events as (

    -- anonymous events cannot be attributed to a customer here
    select
        customer_id,
        event_date as activity_date,
        case when event_type in ('add_to_cart', 'support') then event_type else 'event' end as activity,
        null::double as amount,
        null::integer as n_items
    from {{ ref('stg_events') }}
    where customer_id is not null and {{ activity_source_predicate('event_ts', on_landing_day=true) }}

),

touches_sent as (

    select
        customer_id,
        sent_date as activity_date,
        case when is_control then 'control_touch' else 'touch' end as activity,
        null::double as amount,
        null::integer as n_items
    from {{ ref('stg_campaign_touches') }}
    where {{ activity_source_predicate('sent_ts', on_landing_day=true) }}

),

-- opens and clicks count on the day they happened, not on the send day; the control group is never
-- contacted, so anything recorded against a control touch is ignored
touches_opened as (

    select
        customer_id,
        opened_date as activity_date,
        'open' as activity,
        null::double as amount,
        null::integer as n_items
    from {{ ref('stg_campaign_touches') }}
    where opened_ts is not null and not is_control and {{ activity_source_predicate('opened_ts') }}

),

touches_clicked as (

    select
        customer_id,
        clicked_date as activity_date,
        'click' as activity,
        null::double as amount,
        null::integer as n_items
    from {{ ref('stg_campaign_touches') }}
    where clicked_ts is not null and not is_control and {{ activity_source_predicate('clicked_ts') }}

),

activity as (

    select * from orders
    union all
    select * from events
    union all
    select * from touches_sent
    union all
    select * from touches_opened
    union all
    select * from touches_clicked

),

-- one aggregation over all sources (rather than one per source and a merge) keeps this to a single pass
-- over the largest intermediate result
daily as (

    select
        customer_id,
        activity_date,
        count(*) filter (where activity = 'order')::integer as n_orders,
        coalesce(sum(amount), 0)::decimal(18, 2) as revenue,
        coalesce(sum(n_items), 0)::integer as n_items,
        count(*) filter (where activity in ('event', 'add_to_cart', 'support'))::integer as n_events,
        count(*) filter (where activity = 'add_to_cart')::integer as n_add_to_cart,
        count(*) filter (where activity = 'support')::integer as n_support,
        count(*) filter (where activity = 'touch')::integer as n_touches,
        count(*) filter (where activity = 'open')::integer as n_opens,
        count(*) filter (where activity = 'click')::integer as n_clicks,
        count(*) filter (where activity = 'control_touch')::integer as n_control_touches

    from activity
    group by customer_id, activity_date

),

{%- set counts = ['orders', 'revenue', 'items', 'events', 'add_to_cart', 'support', 'touches', 'opens', 'clicks',
                  'control_touches'] %}

-- what each row adds to the running totals: a new day its counts; a base row the totals it already holds
steps as (

    select
        customer_id,
        activity_date,
        daily.* exclude (customer_id, activity_date),
        {%- for count in counts %}
        {{ 'revenue' if count == 'revenue' else 'n_' ~ count }} as {{ count }}_step,
        {%- endfor %}
        case when n_orders > 0 then activity_date end as first_order_step,
        case when n_orders > 0 then activity_date end as last_order_step,
        case when n_events > 0 then activity_date end as last_event_step,
        case when n_opens > 0 then activity_date end as last_open_step

    from daily
    {%- if is_incremental() and activity_from_sql() is not none %}

    union all by name

    -- the customer's last row before activity_from, when their later rows changed: it carries their totals on,
    -- and its next_activity_date points at a row that was just deleted or recomputed
    select
        customer_id,
        activity_date,
        {%- for count in counts %}
        {{ 'revenue' if count == 'revenue' else 'n_' ~ count }},
        cum_{{ count }} as {{ count }}_step,
        {%- endfor %}
        first_order_date as first_order_step,
        last_order_date as last_order_step,
        last_event_date as last_event_step,
        last_open_date as last_open_step

    from {{ this }}
    where activity_date < {{ activity_from_sql() }}
        and (
            next_activity_date >= {{ activity_from_sql() }}
            or (next_activity_date is null and customer_id in (select customer_id from daily))
        )
    {%- endif %}

),

running as (

    select
        customer_id,
        activity_date,
        {%- for count in counts %}
        {{ 'revenue' if count == 'revenue' else 'n_' ~ count }},
        {%- endfor %}

        -- sums of integers are widened to 128 bits by DuckDB; the casts keep the table compact
        {%- for count in counts %}
        (sum({{ count }}_step) over to_date)::{{ 'decimal(18, 2)' if count == 'revenue' else 'integer' }} as cum_{{ count }},
        {%- endfor %}

        min(first_order_step) over to_date as first_order_date,
        max(last_order_step) over to_date as last_order_date,
        max(last_event_step) over to_date as last_event_date,
        max(last_open_step) over to_date as last_open_date,

        lead(activity_date) over by_day as next_activity_date

    from steps
    window
        by_day as (partition by customer_id order by activity_date),
        to_date as (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        )

)

-- Ordered by next_activity_date, so that DuckDB's per-row-group min/max lets a read of the rows holding a cut-off
-- (next_activity_date >= cut-off) skip the row groups that end before it: a weekly run appends rows with late
-- next_activity_dates, which keeps the order roughly intact between full builds (docs/performance.md)
select * from running
order by next_activity_date nulls last
