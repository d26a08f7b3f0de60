-- The rows of this run's snapshot dates that break point-in-time or population rules: recency must fall inside
-- the population window (the last order is before T and within active_window_days), and no window can hold
-- more orders than a longer one or the lifetime.
{{ config(severity='error') }}

select snapshot_date, customer_id
from {{ ref('customer_features') }}
where {{ current_snapshots_filter() }}
    and (
        recency_days < 1
        or recency_days > {{ int_var('active_window_days') }}
        or tenure_days < 1
        or orders_30d > orders_90d
        or orders_90d > orders_180d
        or orders_180d > orders_365d
        or orders_365d > orders_lifetime
        or revenue_365d > revenue_lifetime
        or events_30d > events_90d
        or add_to_cart_90d > events_90d
        or days_since_last_event < 1
    )
