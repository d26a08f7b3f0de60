-- One row per calendar day from the day before the first snapshot to the last snapshot, with the number of
-- snapshot dates on or before that day. Snapshot number j (int_snapshots.snapshot_index) lies in (a, b]
-- exactly when n(a) < j <= n(b), so the marts turn "every snapshot T with a < T <= b" into a range of numbers
-- with two equality joins here instead of a range join. Days outside the covered range are clamped onto its
-- ends by the callers (n = 0 before the first snapshot, n = all after the last).
with

snapshots as (

    select * from {{ ref('int_snapshots') }}

),

days as (

    select unnest(generate_series(min(snapshot_date) - 1, max(snapshot_date), interval 1 day))::date as calendar_date
    from snapshots
    having count(*) > 0

),

counted as (

    select
        days.calendar_date,
        count(snapshots.snapshot_date)::integer as snapshots_to_date
    from days
    left join snapshots
        on snapshots.snapshot_date <= days.calendar_date
    group by days.calendar_date

)

select * from counted
