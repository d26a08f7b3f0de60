-- Point-in-time features: one row per customer in the population of each snapshot date T of this run, built
-- only from data with event time < T (T is midnight UTC, so that is "activity dates before T"). Windows are
-- half-open and day-aligned: the 30-day window of T is [T - 30 days, T), so an order exactly 30 days before T
-- counts and one 31 days before does not.
--
-- How: windowed counts are differences of running totals, orders_30d = (orders before T) - (orders before
-- T - 30 days). An activity row dated d holds the customer's running totals for every cut-off X in
-- (d, next_activity_date], so "before X" is one row per customer, found by a filter rather than a search. Each
-- snapshot reads its five cut-offs (T and T minus each window) that way and joins them on the customer, so one
-- snapshot costs the same whether the history is one year long or ten.
--
-- The SQL is the macro customer_features_select (macros/customer_features_select.sql), so that the materialization
-- (macros/snapshot_incremental.sql) can write a run's snapshot dates a few at a time: a snapshot's joins hold memory
-- that DuckDB releases only when its statement ends, so one statement for every date held all of them at once. A
-- run replaces exactly the snapshot dates it was given.
{{ config(materialized='snapshot_incremental', snapshot_select='customer_features_select', snapshots_per_statement=8) }}

{{ customer_features_select(snapshot_date_list()) }}
