-- Churn label of every population member of each snapshot date T of this run: churned = 1 when the customer
-- places no order in [T, T + label_horizon_days), else 0. Only matured snapshots get labels, i.e. those with
-- T + horizon <= data_end, the exclusive end of the ingested data (var `data_end`, or the day after the last
-- order partition when it is null); a later snapshot has no rows yet and is labelled by a later run.
--
-- The population of T is the customer_features population of T. Labels look forward into the orders, so they are
-- the one mart that reads the bronze source itself: the orchestrator builds them in a run of their own, once the
-- landing days [T, T + horizon) are in, and the lineage shows that dependency.
--
-- Incremental (delete+insert on snapshot_date): a run replaces exactly the snapshot dates it was given.
{%- set horizon = int_var('label_horizon_days') %}
{%- set data_end = data_end_var_sql() %}
{%- set dates = snapshot_date_list() %}

with

population as (

    select customer_id, snapshot_date
    from {{ ref('customer_features') }}
    where {{ current_snapshots_filter() }}

),

orders as (

    select
        customer_id,
        {{ utc_date('order_ts') }} as order_date,
        _partition_date
    from {{ source('bronze', 'orders') }}

),

data_end as (

    {% if data_end -%}
    select {{ data_end }} as data_end
    {%- else -%}
    -- the newest landing day that holds an order, from the Delta log (a scan of the orders would open every file)
    select max(partitions['_partition_date'])::date + 1 as data_end
    from {{ delta_files(source('bronze', 'orders')) }}
    where cardinality is null or cardinality > 0
    {%- endif %}

),

-- the orders that can decide a label of this run: from the first T to the last T + horizon, so that a weekly run
-- reads a horizon of orders rather than the whole history. Ingestion keeps an order inside its landing day (one
-- outside it is quarantined), so the same bounds on the landing day select the same orders and let delta_scan
-- skip the other days' files.
deciding_orders as (

    select customer_id, order_date
    from orders
    {%- if dates %}
    where order_date >= date '{{ dates[0] }}' and order_date < date '{{ dates[-1] }}' + {{ horizon }}
        and _partition_date >= date '{{ dates[0] }}' and _partition_date < date '{{ dates[-1] }}' + {{ horizon }}
    {%- endif %}

),

-- the customer's first order on or after T
next_orders as (

    select
        population.customer_id,
        population.snapshot_date,
        orders.order_date as next_order_date
    from population
    asof left join deciding_orders as orders
        on population.customer_id = orders.customer_id
        and population.snapshot_date <= orders.order_date

),

labels as (

    select
        next_orders.customer_id,
        next_orders.snapshot_date,
        case
            when next_orders.next_order_date < next_orders.snapshot_date + {{ horizon }} then 0
            else 1
        end as churned,
        {{ horizon }} as horizon_days

    from next_orders
    cross join data_end
    where next_orders.snapshot_date + {{ horizon }} <= data_end.data_end

)

select * from labels
