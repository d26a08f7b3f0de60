-- The bench's hand-written reference for the feature build: every column of marts.customer_features for one
-- snapshot date, in one DuckDB query straight over the bronze Delta tables, with no intermediate table and no
-- state kept between snapshots. bench/feature_reference.py runs it for one snapshot, and once per snapshot (the
-- naive loop), and checks that its rows equal the ones dbt built.
--
-- Placeholders: $lake (the lake root), $t (the snapshot date, 'YYYY-MM-DD'), $active_window (days).
-- Dates are UTC calendar dates and a window of w days before T is [T - w, T), as in the dbt models.

with

customers as (
    select
        customer_id,
        upper(trim(country)) as country,
        lower(trim(acquisition_channel)) as acquisition_channel,
        cast(signup_ts as date) as signup_date
    from delta_scan('$lake/bronze/customers')
    qualify row_number() over (
        partition by customer_id order by _partition_date desc, _ingested_at desc, _source_file desc
    ) = 1
),

-- a day's revenue is rounded to cents before it is summed, as the activity table holds it
order_days as (
    select
        customer_id,
        cast(order_ts as date) as day,
        count(*) as orders,
        sum(amount)::decimal(18, 2) as revenue,
        coalesce(sum(n_items), 0) as items
    from delta_scan('$lake/bronze/orders')
    where order_ts < timestamptz '$t 00:00:00+00' and _partition_date < date '$t'
    group by all
),

orders as (
    select
        customer_id,
        min(day) as first_order_date,
        max(day) as last_order_date,
        sum(orders) filter (where day >= date '$t' - 30) as orders_30d,
        sum(orders) filter (where day >= date '$t' - 90) as orders_90d,
        sum(orders) filter (where day >= date '$t' - 180) as orders_180d,
        sum(orders) filter (where day >= date '$t' - 365) as orders_365d,
        sum(orders) as orders_lifetime,
        sum(revenue) filter (where day >= date '$t' - 30) as revenue_30d,
        sum(revenue) filter (where day >= date '$t' - 90) as revenue_90d,
        sum(revenue) filter (where day >= date '$t' - 180) as revenue_180d,
        sum(revenue) filter (where day >= date '$t' - 365) as revenue_365d,
        sum(revenue) as revenue_lifetime,
        sum(items) filter (where day >= date '$t' - 365) as items_365d
    from order_days
    group by customer_id
),

events as (
    select
        customer_id,
        max(cast(event_ts as date)) as last_event_date,
        count(*) filter (where event_ts >= timestamptz '$t 00:00:00+00' - interval 30 day) as events_30d,
        count(*) filter (where event_ts >= timestamptz '$t 00:00:00+00' - interval 90 day) as events_90d,
        count(*) filter (where event_ts >= timestamptz '$t 00:00:00+00' - interval 365 day) as events_365d,
        count(*) as events_lifetime,
        count(*) filter (where event_ts >= timestamptz '$t 00:00:00+00' - interval 90 day
                         and lower(event_type) = 'add_to_cart') as add_to_cart_90d,
        count(*) filter (where event_ts >= timestamptz '$t 00:00:00+00' - interval 30 day
                         and lower(event_type) = 'support') as support_30d,
        count(*) filter (where event_ts >= timestamptz '$t 00:00:00+00' - interval 90 day
                         and lower(event_type) = 'support') as support_90d
    from delta_scan('$lake/bronze/events')
    where customer_id is not null and event_ts < timestamptz '$t 00:00:00+00' and _partition_date < date '$t'
    group by customer_id
),

-- control-group touches are not contact: they count for none of the touch features
touches as (
    select
        customer_id,
        count(*) filter (where sent_ts >= timestamptz '$t 00:00:00+00' - interval 90 day
                         and sent_ts < timestamptz '$t 00:00:00+00') as touches_90d,
        count(*) filter (where opened_ts >= timestamptz '$t 00:00:00+00' - interval 90 day
                         and opened_ts < timestamptz '$t 00:00:00+00') as opens_90d,
        count(*) filter (where clicked_ts >= timestamptz '$t 00:00:00+00' - interval 90 day
                         and clicked_ts < timestamptz '$t 00:00:00+00') as clicks_90d,
        max(cast(opened_ts as date)) filter (where opened_ts < timestamptz '$t 00:00:00+00') as last_open_date
    from delta_scan('$lake/bronze/campaign_touches')
    where not is_control
    group by customer_id
),

-- consent per purpose and day: the day's last event, a withdrawal winning a tie
consent_days as (
    select customer_id, lower(purpose) as purpose, cast(event_ts as date) as day, granted
    from delta_scan('$lake/bronze/consents')
    where event_ts < timestamptz '$t 00:00:00+00'
    qualify row_number() over (
        partition by customer_id, lower(purpose), cast(event_ts as date) order by event_ts desc, granted asc
    ) = 1
),

-- a marketing withdrawal is a day whose consent went from granted to withdrawn
consents as (
    select
        customer_id,
        arg_max(granted, day) filter (where purpose = 'profiling') as consent_profiling,
        arg_max(granted, day) filter (where purpose = 'marketing') as consent_marketing,
        max(day) filter (where withdrawal) as last_marketing_withdrawal_date
    from (
        select
            *,
            purpose = 'marketing' and not granted
            and lag(granted) over (partition by customer_id, purpose order by day) as withdrawal
        from consent_days
    )
    group by customer_id
)

select
    date '$t' as snapshot_date,
    o.customer_id,
    c.country,
    c.acquisition_channel,
    (date '$t' - c.signup_date)::integer as tenure_days,
    (date '$t' - o.last_order_date)::integer as recency_days,
    (date '$t' - o.first_order_date)::integer as first_order_age_days,
    coalesce(o.orders_30d, 0)::integer as orders_30d,
    coalesce(o.orders_90d, 0)::integer as orders_90d,
    coalesce(o.orders_180d, 0)::integer as orders_180d,
    coalesce(o.orders_365d, 0)::integer as orders_365d,
    o.orders_lifetime::integer as orders_lifetime,
    coalesce(o.revenue_30d, 0)::decimal(18, 2) as revenue_30d,
    coalesce(o.revenue_90d, 0)::decimal(18, 2) as revenue_90d,
    coalesce(o.revenue_180d, 0)::decimal(18, 2) as revenue_180d,
    coalesce(o.revenue_365d, 0)::decimal(18, 2) as revenue_365d,
    o.revenue_lifetime::decimal(18, 2) as revenue_lifetime,
    (o.revenue_365d / nullif(o.orders_365d, 0))::double as avg_order_value_365d,
    (o.items_365d / nullif(o.orders_365d, 0))::double as items_per_order_365d,
    (coalesce(o.orders_90d, 0) - (coalesce(o.orders_180d, 0) - coalesce(o.orders_90d, 0)))::integer
        as order_trend_90d,
    (coalesce(o.revenue_90d, 0) - (coalesce(o.revenue_180d, 0) - coalesce(o.revenue_90d, 0)))::decimal(18, 2)
        as revenue_trend_90d,
    case
        when o.orders_lifetime >= 2
            then ((o.last_order_date - o.first_order_date) / (o.orders_lifetime - 1))::double
    end as mean_days_between_orders,
    coalesce(e.events_30d, 0)::integer as events_30d,
    coalesce(e.events_90d, 0)::integer as events_90d,
    coalesce(e.add_to_cart_90d, 0)::integer as add_to_cart_90d,
    coalesce(e.support_30d, 0)::integer as support_30d,
    coalesce(e.support_90d, 0)::integer as support_90d,
    (e.support_90d / nullif(e.events_90d, 0))::double as support_share_90d,
    coalesce(e.events_365d, 0)::integer as events_365d,
    coalesce(e.events_lifetime, 0)::integer as events_lifetime,
    (date '$t' - e.last_event_date)::integer as days_since_last_event,
    coalesce(x.touches_90d, 0)::integer as touches_90d,
    coalesce(x.opens_90d, 0)::integer as opens_90d,
    coalesce(x.clicks_90d, 0)::integer as clicks_90d,
    (x.opens_90d / nullif(x.touches_90d, 0))::double as open_rate_90d,
    (x.clicks_90d / nullif(x.touches_90d, 0))::double as click_rate_90d,
    (date '$t' - x.last_open_date)::integer as days_since_last_open,
    k.consent_profiling,
    k.consent_marketing,
    (date '$t' - k.last_marketing_withdrawal_date)::integer as days_since_marketing_withdrawal
from orders as o
inner join customers as c on c.customer_id = o.customer_id and c.signup_date < date '$t'
left join events as e on e.customer_id = o.customer_id
left join touches as x on x.customer_id = o.customer_id
left join consents as k on k.customer_id = o.customer_id
where o.last_order_date >= date '$t' - $active_window
