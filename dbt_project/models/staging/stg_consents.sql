-- One row per consent event (a grant or a withdrawal for one purpose).
with

source as (

    select * from {{ source('bronze', 'consents') }}

),

renamed as (

    select
        consent_id,
        customer_id,
        lower(purpose) as purpose,
        granted,
        event_ts,
        {{ utc_date('event_ts') }} as event_date,
        _partition_date,
        _source_file,
        _run_id,
        _ingested_at

    from source

)

select * from renamed
