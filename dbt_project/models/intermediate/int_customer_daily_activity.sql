-- One row per customer and UTC day on which the customer did anything: ordered, browsed (help-centre visits
-- counted apart as well), was sent a campaign
-- message, opened or clicked one. Besides the day's counts it carries running totals (`cum_*`, including the
-- day itself) and the last order/event day so far, so that a snapshot at T can read "everything before T" from
-- the customer's last activity row before T, and a window [T - w, T) as the difference of two such rows.
-- The marts find those rows through next_activity_date: a row holds the customer's state for every cut-off
-- in (activity_date, next_activity_date].
with

orders as (

    select
        customer_id,
        order_date as activity_date,
        'order' as activity,
        amount,
        n_items
    from {{ ref('stg_orders') }}

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
    where customer_id is not null

),

touches_sent as (

    select
        customer_id,
        sent_date as activity_date,
        case when is_control then 'control_touch' else 'touch' end as activity,
        null::double as amount,
        null::integer as n_items
    from {{ ref('stg_campaign_touches') }}

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
    where opened_ts is not null and not is_control

),

touches_clicked as (

    select
        customer_id,
        clicked_date as activity_date,
        'click' as activity,
        null::double as amount,
        null::integer as n_items
    from {{ ref('stg_campaign_touches') }}
    where clicked_ts is not null and not is_control

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

running as (

    select
        *,

        -- sums of integers are widened to 128 bits by DuckDB; the casts keep the table compact
        (sum(n_orders) over to_date)::integer as cum_orders,
        (sum(revenue) over to_date)::decimal(18, 2) as cum_revenue,
        (sum(n_items) over to_date)::integer as cum_items,
        (sum(n_events) over to_date)::integer as cum_events,
        (sum(n_add_to_cart) over to_date)::integer as cum_add_to_cart,
        (sum(n_support) over to_date)::integer as cum_support,
        (sum(n_touches) over to_date)::integer as cum_touches,
        (sum(n_opens) over to_date)::integer as cum_opens,
        (sum(n_clicks) over to_date)::integer as cum_clicks,
        (sum(n_control_touches) over to_date)::integer as cum_control_touches,

        max(case when n_orders > 0 then activity_date end) over to_date as last_order_date,
        max(case when n_events > 0 then activity_date end) over to_date as last_event_date,
        max(case when n_opens > 0 then activity_date end) over to_date as last_open_date,

        lead(activity_date) over by_day as next_activity_date,
        min(case when n_orders > 0 then activity_date end) over after_date as next_order_date

    from daily
    window
        by_day as (partition by customer_id order by activity_date),
        to_date as (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        ),
        after_date as (
            partition by customer_id order by activity_date
            rows between 1 following and unbounded following
        )

)

select * from running
