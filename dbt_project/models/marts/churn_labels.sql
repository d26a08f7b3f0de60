-- Churn label of every population member of each snapshot date T of this run: churned = 1 when the customer
-- places no order in [T, T + label_horizon_days), else 0. Only matured snapshots get labels, i.e. those with
-- T + horizon <= data_end, the exclusive end of the ingested data (var `data_end`, or the day after the last
-- order partition when it is null); a later snapshot simply has no rows yet and is labelled by a later run.
--
-- The population of T comes from the customer's last activity row before T (int_customer_population_spans);
-- as nothing happens between that row and T, the first order after it (next_order_date) is the first order
-- on or after T.
--
-- Incremental (delete+insert on snapshot_date): a run replaces exactly the snapshot dates it was given.
{%- set horizon = int_var('label_horizon_days') %}
{%- set data_end = data_end_var_sql() %}

with

population as (

    select
        spans.customer_id,
        unnest(range(spans.first_snapshot_index, spans.last_snapshot_index + 1)) as snapshot_index,
        spans.next_order_date
    from {{ ref('int_customer_population_spans') }} as spans

),

data_end as (

    {% if data_end -%}
    select {{ data_end }} as data_end
    {%- else -%}
    select max(_partition_date) + 1 as data_end
    from {{ ref('stg_orders') }}
    {%- endif %}

),

labels as (

    select
        population.customer_id,
        snapshots.snapshot_date,
        case
            when population.next_order_date < snapshots.snapshot_date + {{ horizon }} then 0
            else 1
        end as churned,
        {{ horizon }} as horizon_days

    from population
    inner join {{ ref('int_snapshots') }} as snapshots
        on snapshots.snapshot_index = population.snapshot_index
    cross join data_end
    where snapshots.snapshot_date + {{ horizon }} <= data_end.data_end

)

select * from labels
