-- One row per order, contract columns only (columns added later upstream, such as coupon_code, are not
-- passed on until the contract names them). order_date is the UTC calendar date of order_ts.
with

source as (

    select * from {{ source('bronze', 'orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        order_ts,
        {{ utc_date('order_ts') }} as order_date,
        amount,
        n_items,
        lower(channel) as channel,
        _partition_date,
        _source_file,
        _run_id,
        _ingested_at

    from source

)

select * from renamed
