-- One row per customer: the latest landed record of each customer_id (a customer re-exported on a later
-- landing day supersedes the earlier copy). Timestamps stay UTC. Bronze holds no contact details (ingestion keeps
-- them in the restricted pii_vault) and customer_id is the customer's keyed token.
with

source as (

    select * from {{ source('bronze', 'customers') }}

),

latest as (

    select *
    from source
    qualify row_number() over (
        partition by customer_id
        order by _partition_date desc, _ingested_at desc, _source_file desc
    ) = 1

),

renamed as (

    select
        customer_id,
        lower(gender) as gender,
        birth_year,
        upper(trim(country)) as country,
        lower(trim(acquisition_channel)) as acquisition_channel,
        signup_ts,
        {{ utc_date('signup_ts') }} as signup_date,
        _partition_date,
        _source_file,
        _run_id,
        _ingested_at

    from latest

)

select * from renamed
