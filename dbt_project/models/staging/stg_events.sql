-- One row per clickstream event. customer_id stays null for anonymous visitors; features only use
-- events of known customers.
with

source as (

    select * from {{ source('bronze', 'events') }}

),

renamed as (

    select
        event_id,
        anonymous_id,
        device_id,
        customer_id,
        event_ts,
        {{ utc_date('event_ts') }} as event_date,
        lower(event_type) as event_type,
        page,
        _partition_date,
        _source_file,
        _run_id,
        _ingested_at

    from source

)

select * from renamed
