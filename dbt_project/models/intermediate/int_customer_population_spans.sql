{{ config(materialized='ephemeral') }}

-- The population of the requested snapshots, as ranges of snapshots per activity row. A customer is in the
-- population of T when signed up before T, with at least one order before T and the last of them within
-- `active_window_days` days of T.
--
-- An activity row dated d whose next activity is on day n holds the customer's state for every cut-off T in
-- (d, n]: its running totals are "everything before T". Within that interval the last order before T is the
-- row's last_order_date, so the customer is in the population for T <= last_order_date + active_window_days,
-- and signed up for T > signup_date. Each row keeps the snapshots inside the intersection of those intervals,
-- as a range of snapshot numbers: every (customer, T) of the population falls in exactly one row's range, and
-- nothing is produced for customers outside the population.
{%- set active_window = int_var('active_window_days') %}

with

customers as (

    select customer_id, signup_date, country, acquisition_channel
    from {{ ref('stg_customers') }}

),

daily as (

    select * from {{ ref('int_customer_daily_activity') }}
    where last_order_date is not null

),

spans as (

    select
        daily.customer_id,
        customers.country,
        customers.acquisition_channel,
        customers.signup_date,
        daily.first_order_date,
        greatest(daily.activity_date, customers.signup_date) as span_start,
        least(
            coalesce(daily.next_activity_date, daily.last_order_date + {{ active_window }}),
            daily.last_order_date + {{ active_window }}
        ) as span_end,
        daily.cum_orders,
        daily.cum_revenue,
        daily.cum_items,
        daily.cum_events,
        daily.cum_add_to_cart,
        daily.cum_support,
        daily.cum_touches,
        daily.cum_opens,
        daily.cum_clicks,
        daily.last_order_date,
        daily.last_event_date,
        daily.last_open_date

    from daily
    inner join customers
        on customers.customer_id = daily.customer_id

),

ranges as (

    {{ snapshot_index_ranges('spans', [
        'customer_id', 'country', 'acquisition_channel', 'signup_date', 'first_order_date',
        'cum_orders', 'cum_revenue', 'cum_items', 'cum_events', 'cum_add_to_cart', 'cum_support',
        'cum_touches', 'cum_opens', 'cum_clicks',
        'last_order_date', 'last_event_date', 'last_open_date',
    ]) }}

)

select * from ranges
