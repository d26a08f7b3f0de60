{#-
    The SQL of the customer_features model (models/marts/customer_features.sql) for the snapshot dates `dates`
    ('YYYY-MM-DD' strings). The model selects the run's dates through it; its materialization
    (macros/snapshot_incremental.sql) writes them a few dates at a time, each batch through this macro again.
-#}
{% macro customer_features_select(dates) -%}
{%- set lookbacks = {
    30: ['cum_orders', 'cum_revenue', 'cum_events', 'cum_support'],
    90: [
        'cum_orders', 'cum_revenue', 'cum_events', 'cum_add_to_cart', 'cum_support', 'cum_touches', 'cum_opens',
        'cum_clicks',
    ],
    180: ['cum_orders', 'cum_revenue'],
    365: ['cum_orders', 'cum_revenue', 'cum_items', 'cum_events'],
} %}
{#- the customer's state before T: running totals and the last days of each kind #}
{%- set state_columns = [
    'cum_orders', 'cum_revenue', 'cum_items', 'cum_events', 'cum_add_to_cart', 'cum_support', 'cum_touches',
    'cum_opens', 'cum_clicks', 'last_order_date', 'last_event_date', 'last_open_date',
] %}

{%- set active_window = int_var('active_window_days') %}
{#- no snapshot dates: one branch that selects nothing, so that the relation keeps its columns #}
{%- set dates = dates or [none] %}

with

-- consent per purpose as of the end of each day on which it changed: several events on one day resolve to the
-- latest, and a withdrawal wins a tie
consent_events as (

    select *
    from {{ ref('stg_consents') }}
    qualify row_number() over (
        partition by customer_id, purpose, event_date
        order by event_ts desc, granted asc
    ) = 1

),

consent_days as (

    select
        customer_id,
        event_date,
        any_value(granted) filter (where purpose = 'profiling') as profiling_changed_to,
        any_value(granted) filter (where purpose = 'marketing') as marketing_changed_to
    from consent_events
    group by customer_id, event_date

),

-- an unsubscribe is a change from granted to withdrawn; a customer who never granted marketing did not unsubscribe
consent_changes as (

    select
        *,
        marketing_changed_to = false
        and last_value(marketing_changed_to ignore nulls) over (
            partition by customer_id order by event_date
            rows between unbounded preceding and 1 preceding
        ) as is_marketing_withdrawal
    from consent_days

),

-- a consent state holds for cut-offs T in (event_date, next event_date], the last one for ever after
consent_spans as materialized (

    select
        customer_id,
        event_date as span_start,
        coalesce(lead(event_date) over by_day, 'infinity'::date) as span_end,
        last_value(profiling_changed_to ignore nulls) over to_date as consent_profiling,
        last_value(marketing_changed_to ignore nulls) over to_date as consent_marketing,
        max(case when is_marketing_withdrawal then event_date end) over to_date as last_marketing_withdrawal_date

    from consent_changes
    window
        by_day as (partition by customer_id order by event_date),
        to_date as (
            partition by customer_id order by event_date
            rows between unbounded preceding and current row
        )

),

-- the customer's latest landed record, read once for all snapshots
customers as materialized (

    select customer_id, signup_date, country, acquisition_channel
    from {{ ref('stg_customers') }}

),

{%- for snapshot in dates %}
{%- set t = "date '" ~ snapshot ~ "'" if snapshot else "date '1970-01-01'" %}

-- {{ snapshot or 'no snapshot' }}: the population (signed up before T, last order within the active window) with
-- its state before T, and the running totals before T - w, each from the one activity row per customer that
-- holds that cut-off
snapshot_{{ loop.index }} as (

    select
        {{ t }} as snapshot_date,
        before_t.*,
        customers.country,
        customers.acquisition_channel,
        customers.signup_date,
        {%- for days, columns in lookbacks.items() %}
        {%- for column in columns %}
        before_{{ days }}d.{{ column }} as {{ column }}_{{ days }}d_ago,
        {%- endfor %}
        {%- endfor %}
        consents.consent_profiling,
        consents.consent_marketing,
        consents.last_marketing_withdrawal_date

    from (
        select customer_id, first_order_date, {{ state_columns | join(', ') }}
        from {{ ref('int_customer_daily_activity') }}
        where {{ holds_cutoff(t) }}
            and last_order_date >= {{ t }} - {{ active_window }}
            {%- if not snapshot %}
            and false
            {%- endif %}
    ) as before_t
    inner join customers
        on customers.customer_id = before_t.customer_id
        and customers.signup_date < {{ t }}
    {%- for days, columns in lookbacks.items() %}
    left join (
        select customer_id, {{ columns | join(', ') }}
        from {{ ref('int_customer_daily_activity') }}
        where {{ holds_cutoff(t ~ ' - ' ~ days) }}
    ) as before_{{ days }}d
        on before_{{ days }}d.customer_id = before_t.customer_id
    {%- endfor %}
    left join (
        select * from consent_spans
        where span_start < {{ t }} and span_end >= {{ t }}
    ) as consents
        on consents.customer_id = before_t.customer_id

),
{%- endfor %}

snapshot_states as (
    {%- for snapshot in dates %}

    select * from snapshot_{{ loop.index }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

windowed as (

    select
        snapshot_date,
        customer_id,
        country,
        acquisition_channel,
        signup_date,
        first_order_date,
        last_order_date,
        last_event_date,
        last_open_date,
        last_marketing_withdrawal_date,

        -- a windowed count is the running total before T less the one before T - w
        {%- for days, columns in lookbacks.items() %}
        {%- for column in columns %}
        {{ column }} - coalesce({{ column }}_{{ days }}d_ago, 0) as {{ column | replace('cum_', '') }}_{{ days }}d,
        {%- endfor %}
        {%- endfor %}
        cum_orders as orders_lifetime,
        cum_revenue as revenue_lifetime,
        cum_events as events_lifetime,

        consent_profiling,
        consent_marketing

    from snapshot_states

),

features as (

    select
        snapshot_date,
        customer_id,
        country,
        acquisition_channel,

        (snapshot_date - signup_date)::integer as tenure_days,
        (snapshot_date - last_order_date)::integer as recency_days,
        -- with orders_lifetime and recency_days, the inputs of a BG/NBD model (x, t_x, T)
        (snapshot_date - first_order_date)::integer as first_order_age_days,

        orders_30d::integer as orders_30d,
        orders_90d::integer as orders_90d,
        orders_180d::integer as orders_180d,
        orders_365d::integer as orders_365d,
        orders_lifetime::integer as orders_lifetime,

        revenue_30d::decimal(18, 2) as revenue_30d,
        revenue_90d::decimal(18, 2) as revenue_90d,
        revenue_180d::decimal(18, 2) as revenue_180d,
        revenue_365d::decimal(18, 2) as revenue_365d,
        revenue_lifetime::decimal(18, 2) as revenue_lifetime,

        -- the population has at least one order in the last 365 days only when active_window_days <= 365
        (revenue_365d / nullif(orders_365d, 0))::double as avg_order_value_365d,
        (items_365d / nullif(orders_365d, 0))::double as items_per_order_365d,

        -- last 90 days against the 90 days before them: [T-90, T) minus [T-180, T-90)
        (orders_90d - (orders_180d - orders_90d))::integer as order_trend_90d,
        (revenue_90d - (revenue_180d - revenue_90d))::decimal(18, 2) as revenue_trend_90d,

        case
            when orders_lifetime >= 2
                then ((last_order_date - first_order_date) / (orders_lifetime - 1))::double
        end as mean_days_between_orders,

        events_30d::integer as events_30d,
        events_90d::integer as events_90d,
        add_to_cart_90d::integer as add_to_cart_90d,
        support_30d::integer as support_30d,
        support_90d::integer as support_90d,
        -- the mix matters more than the volume: the same two visits mean more from a light browser
        (support_90d / nullif(events_90d, 0))::double as support_share_90d,
        events_365d::integer as events_365d,
        events_lifetime::integer as events_lifetime,
        (snapshot_date - last_event_date)::integer as days_since_last_event,

        touches_90d::integer as touches_90d,
        opens_90d::integer as opens_90d,
        clicks_90d::integer as clicks_90d,
        (opens_90d / nullif(touches_90d, 0))::double as open_rate_90d,
        (clicks_90d / nullif(touches_90d, 0))::double as click_rate_90d,
        (snapshot_date - last_open_date)::integer as days_since_last_open,

        consent_profiling,
        consent_marketing,
        (snapshot_date - last_marketing_withdrawal_date)::integer as days_since_marketing_withdrawal

    from windowed

)

select * from features
{%- endmacro %}
