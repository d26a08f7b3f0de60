-- One row per campaign message. Sent, opened and clicked each get their UTC date, because each counts on
-- its own day (an open after a snapshot must not count for it even when the send was before).
with

source as (

    select * from {{ source('bronze', 'campaign_touches') }}

),

renamed as (

    select
        touch_id,
        customer_id,
        campaign_id,
        lower(channel) as channel,
        sent_ts,
        {{ utc_date('sent_ts') }} as sent_date,
        opened_ts,
        {{ utc_date('opened_ts') }} as opened_date,
        clicked_ts,
        {{ utc_date('clicked_ts') }} as clicked_date,
        is_control,
        _partition_date,
        _source_file,
        _run_id,
        _ingested_at

    from source

)

select * from renamed
