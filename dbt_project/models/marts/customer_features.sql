-- Point-in-time features: one row per customer in the population of each snapshot date T of this run, built
-- only from data with event time < T (T is midnight UTC, so that is "activity dates before T"). Windows are
-- half-open and day-aligned: the 30-day window of T is [T - 30 days, T), so an order exactly 30 days before T
-- counts and one 31 days before does not.
--
-- How: windowed counts are differences of running totals, orders_30d = (orders before T) - (orders before
-- T - 30 days). An activity row dated d holds the customer's running totals for every cut-off in
-- (d, next activity]; shifted by w days, it holds the totals "before T - w" for T in (d + w, next + w]. Each
-- activity row is mapped once per window onto the range of snapshot numbers it holds for (a few hundred
-- calendar days make that two equality joins). Per customer, a window's ranges follow each other without gaps,
-- so they are laid out as one array indexed by snapshot number; a single pass per customer then reads, for
-- each snapshot of its population, the totals before T and before T - w by position. No (customer, snapshot)
-- join and no rescan per snapshot: the work grows with activity rows plus output rows, not their product.
--
-- Incremental (delete+insert on snapshot_date): a run replaces exactly the snapshot dates it was given.
{%- set lookbacks = {
    30: ['cum_orders', 'cum_revenue', 'cum_events', 'cum_support'],
    90: [
        'cum_orders', 'cum_revenue', 'cum_events', 'cum_add_to_cart', 'cum_support', 'cum_touches', 'cum_opens',
        'cum_clicks',
    ],
    180: ['cum_orders', 'cum_revenue'],
    365: ['cum_orders', 'cum_revenue', 'cum_items', 'cum_events'],
} %}
{%- set state_columns = [
    'cum_orders', 'cum_revenue', 'cum_items', 'cum_events', 'cum_add_to_cart', 'cum_support', 'cum_touches',
    'cum_opens', 'cum_clicks', 'last_order_date', 'last_event_date', 'last_open_date',
] %}

with

population_ranges as (

    select * from {{ ref('int_customer_population_spans') }}

),

{% for days, columns in lookbacks.items() %}

-- running totals before T - {{ days }} days: an activity row dated d holds them for T - {{ days }} in (d, next activity];
-- the last activity row holds them for ever after
lookback_{{ days }}d_spans as (

    select
        customer_id,
        activity_date + {{ days }} as span_start,
        coalesce(next_activity_date + {{ days }}, 'infinity'::date) as span_end,
        struct_pack({{ columns | join(', ') }}) as totals
    -- read the table in each window rather than through a shared CTE, which DuckDB would materialize in memory
    from {{ ref('int_customer_daily_activity') }}

),

lookback_{{ days }}d_ranges as (

    {{ snapshot_index_ranges('lookback_' ~ days ~ 'd_spans', ['customer_id', 'totals']) }}

),
{% endfor %}

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
consent_spans as (

    select
        customer_id,
        event_date as span_start,
        coalesce(lead(event_date) over by_day, 'infinity'::date) as span_end,
        struct_pack(
            consent_profiling := last_value(profiling_changed_to ignore nulls) over to_date,
            consent_marketing := last_value(marketing_changed_to ignore nulls) over to_date,
            last_marketing_withdrawal_date := max(case when is_marketing_withdrawal then event_date end) over to_date
        ) as consents

    from consent_changes
    window
        by_day as (partition by customer_id order by event_date),
        to_date as (
            partition by customer_id order by event_date
            rows between unbounded preceding and current row
        )

),

consent_ranges as (

    {{ snapshot_index_ranges('consent_spans', ['customer_id', 'consents']) }}

),

-- every range of every kind, one column per kind, so that one aggregation can collect them per customer
all_ranges as (

    select
        customer_id,
        first_snapshot_index,
        last_snapshot_index,
        country,
        acquisition_channel,
        signup_date,
        first_order_date,
        struct_pack({{ state_columns | join(', ') }}) as population
    from population_ranges
    {%- for days in lookbacks %}

    union all by name

    select customer_id, first_snapshot_index, last_snapshot_index, totals as lookback_{{ days }}d
    from lookback_{{ days }}d_ranges
    {%- endfor %}

    union all by name

    select customer_id, first_snapshot_index, last_snapshot_index, consents
    from consent_ranges

),

{%- set kinds = ['population'] %}
{%- for days in lookbacks %}{% do kinds.append('lookback_' ~ days ~ 'd') %}{% endfor %}
{%- do kinds.append('consents') %}

-- per customer in some population: each kind's ranges in snapshot order
customer_ranges as (

    select
        customer_id,
        any_value(country) as country,
        any_value(acquisition_channel) as acquisition_channel,
        any_value(signup_date) as signup_date,
        any_value(first_order_date) as first_order_date,
        {%- for kind in kinds %}
        list_sort(
            list(struct_pack(first_snapshot_index, last_snapshot_index, value := {{ kind }}))
                filter (where {{ kind }} is not null)
        ) as {{ kind }}_ranges{{ "," if not loop.last }}
        {%- endfor %}
    from all_ranges
    group by customer_id
    having count(population) > 0

),

customer_arrays as (

    select
        customer_id,
        country,
        acquisition_channel,
        signup_date,
        first_order_date,
        population_ranges,
        {%- for kind in kinds[1:] %}
        {{ kind }}_ranges,
        {{ snapshot_array(kind ~ '_ranges') }} as {{ kind }}_by_snapshot{{ "," if not loop.last }}
        {%- endfor %}
    from customer_ranges

),

-- one row per population range, then per population member and snapshot: the state before T comes from the
-- range; the totals before T - w (null: no activity before then) and the consents before T are read from the
-- customer's arrays by snapshot number
customer_population_ranges as (

    select
        customer_arrays.* exclude (population_ranges),
        unnest(population_ranges) as population_range
    from customer_arrays

),

customer_snapshots as (

    select
        *,
        unnest(range(
            population_range.first_snapshot_index, population_range.last_snapshot_index + 1
        )) as snapshot_index
    from customer_population_ranges

),

snapshot_values as (

    select
        customer_id,
        country,
        acquisition_channel,
        signup_date,
        first_order_date,
        snapshot_index,
        population_range.value as state_before_t,
        {%- for kind in kinds[1:] %}
        {{ value_at_snapshot(kind ~ '_by_snapshot', kind ~ '_ranges', 'snapshot_index') }} as {{ kind }}{{ "," if not loop.last }}
        {%- endfor %}
    from customer_snapshots

),

windowed as (

    select
        snapshots.snapshot_date,
        snapshot_values.customer_id,
        snapshot_values.country,
        snapshot_values.acquisition_channel,
        snapshot_values.signup_date,
        snapshot_values.first_order_date,
        state_before_t.last_order_date,
        state_before_t.last_event_date,
        state_before_t.last_open_date,
        consents.last_marketing_withdrawal_date,

        state_before_t.cum_orders - coalesce(lookback_30d.cum_orders, 0) as orders_30d,
        state_before_t.cum_orders - coalesce(lookback_90d.cum_orders, 0) as orders_90d,
        state_before_t.cum_orders - coalesce(lookback_180d.cum_orders, 0) as orders_180d,
        state_before_t.cum_orders - coalesce(lookback_365d.cum_orders, 0) as orders_365d,
        state_before_t.cum_orders as orders_lifetime,

        state_before_t.cum_revenue - coalesce(lookback_30d.cum_revenue, 0) as revenue_30d,
        state_before_t.cum_revenue - coalesce(lookback_90d.cum_revenue, 0) as revenue_90d,
        state_before_t.cum_revenue - coalesce(lookback_180d.cum_revenue, 0) as revenue_180d,
        state_before_t.cum_revenue - coalesce(lookback_365d.cum_revenue, 0) as revenue_365d,
        state_before_t.cum_revenue as revenue_lifetime,

        state_before_t.cum_items - coalesce(lookback_365d.cum_items, 0) as items_365d,

        state_before_t.cum_events - coalesce(lookback_30d.cum_events, 0) as events_30d,
        state_before_t.cum_events - coalesce(lookback_90d.cum_events, 0) as events_90d,
        state_before_t.cum_events - coalesce(lookback_365d.cum_events, 0) as events_365d,
        state_before_t.cum_events as events_lifetime,
        state_before_t.cum_add_to_cart - coalesce(lookback_90d.cum_add_to_cart, 0) as add_to_cart_90d,
        state_before_t.cum_support - coalesce(lookback_30d.cum_support, 0) as support_30d,
        state_before_t.cum_support - coalesce(lookback_90d.cum_support, 0) as support_90d,

        state_before_t.cum_touches - coalesce(lookback_90d.cum_touches, 0) as touches_90d,
        state_before_t.cum_opens - coalesce(lookback_90d.cum_opens, 0) as opens_90d,
        state_before_t.cum_clicks - coalesce(lookback_90d.cum_clicks, 0) as clicks_90d,

        consents.consent_profiling,
        consents.consent_marketing

    from snapshot_values
    inner join {{ ref('int_snapshots') }} as snapshots
        on snapshots.snapshot_index = snapshot_values.snapshot_index

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
