"""When the daemon (or `assay tick`) materializes a snapshot partition on its own: declarative automation.

Two rules cover the weekly life of a deployment:
- `snapshot_due`: a snapshot that has never been built, once every landing day it reads is ingested. That is the
  weekly run (features, scores, drift) on the Monday after the week's last day lands, and after an outage each
  missed week in turn, within the look-back. It is requested once: a run that finishes without writing it (scoring
  before the first promotion) is not asked again until something it reads is written.
- `label_matured`: labels, and the monitoring that needs them, once every landing day of the label's horizon is
  ingested; again when one of those days is ingested anew (a late or corrected file can change a label).

Neither retries a failed run by itself: a failure shows in the UI and is re-run from there or by `assay tick`.
"""

from __future__ import annotations

from datetime import timedelta

from dagster import AutomationCondition

# Missed snapshots older than this many periods are left to a backfill (`assay run`): the daemon's own
# catch-up limit for schedules is 5 ticks as well.
CATCH_UP_PERIODS = 5


def requested_since_written() -> AutomationCondition:
    """Requested after the target, or any of its dependencies, was last written. Without it a partition that a run
    leaves missing on purpose would be requested again on every evaluation: a run a minute under the daemon.
    `any_deps_updated` leaves out what the requested run itself wrote upstream (the new snapshot's features)."""
    return AutomationCondition.newly_requested().since(
        AutomationCondition.newly_updated() | AutomationCondition.any_deps_updated())


def snapshot_due(period_days: int) -> AutomationCondition:
    return (
        AutomationCondition.in_latest_time_window(timedelta(days=period_days * (CATCH_UP_PERIODS + 1)))
        & AutomationCondition.missing()
        & ~AutomationCondition.execution_failed()
        & ~requested_since_written()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("snapshot_due")


def written_since() -> AutomationCondition:
    """A dependency was written after the target was: compared per partition by when each was written. Not
    `any_deps_updated`: that asks whether the dependency's latest run also targeted this asset, and after a
    catch-up tick that runs several snapshots one after the other, the latest run is another snapshot's."""
    return AutomationCondition.any_deps_match(AutomationCondition.newly_updated()).since(
        AutomationCondition.newly_updated())


def label_matured(period_days: int, label_periods: int) -> AutomationCondition:
    lookback = timedelta(days=period_days * (label_periods + CATCH_UP_PERIODS + 1))
    return (
        AutomationCondition.in_latest_time_window(lookback)
        # Only snapshots at least a horizon (in whole periods) old. The landing days a younger label reads lie in
        # the future, and a partition that does not exist yet never counts as a missing dependency.
        & ~AutomationCondition.in_latest_time_window(timedelta(days=period_days * label_periods))
        & ((AutomationCondition.missing() & ~AutomationCondition.execution_failed()) | written_since())
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("label_matured")


def after_new_scores() -> AutomationCondition:
    """Unpartitioned reports on the newest scores (campaign economics, audience): after each scoring run."""
    return AutomationCondition.eager()
