"""Consent state and the profiling/marketing rule, on small frames with every case spelled out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from assets.consent import consent_state, split_by_consent


def ts(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 1, day, hour, tzinfo=UTC)


CONSENTS = pl.DataFrame(
    [
        ("granted", "profiling", True, ts(1)),
        ("granted", "marketing", True, ts(1)),
        ("withdrew", "profiling", True, ts(1)),
        ("withdrew", "profiling", False, ts(10)),
        ("withdrew", "marketing", True, ts(1)),
        ("withdrew", "marketing", False, ts(10)),
        ("tie", "profiling", True, ts(5)),
        ("tie", "profiling", False, ts(5)),  # same instant: the withdrawal wins
        ("regranted", "profiling", False, ts(1)),
        ("regranted", "profiling", True, ts(10)),
        ("refused", "profiling", False, ts(1)),
    ],
    schema={"customer_id": pl.Utf8, "purpose": pl.Utf8, "granted": pl.Boolean, "event_ts": pl.Datetime("us", "UTC")},
    orient="row",
)


def test_latest_event_wins_and_a_withdrawal_wins_a_tie():
    state = {r["customer_id"]: r for r in consent_state(CONSENTS.lazy()).iter_rows(named=True)}
    assert state["granted"]["profiling"] and state["granted"]["marketing"]
    assert not state["withdrew"]["profiling"] and not state["withdrew"]["marketing"]
    assert state["tie"]["profiling"] is False
    assert state["regranted"]["profiling"] is True
    assert state["refused"]["marketing"] is None  # no record for that purpose


def test_state_as_of_ignores_later_events():
    before = consent_state(CONSENTS.lazy(), as_of=ts(10)).filter(pl.col("customer_id") == "withdrew")
    assert before.item(0, "profiling") is True


def test_profiling_needs_consent_at_the_snapshot_and_now():
    frame = pl.DataFrame({
        "customer_id": ["granted", "withdrew", "regranted", "refused", "unknown", "tie"],
        "snapshot_date": [date(2025, 1, 6)] * 6,
        # the dbt feature: consent as of the snapshot
        "consent_profiling": [True, True, False, False, None, False],
    })
    split = split_by_consent(frame, consent_state(CONSENTS.lazy()), "profiling", at_snapshot_column="consent_profiling")
    assert split.allowed.get_column("customer_id").to_list() == ["granted"]
    assert split.excluded == {"no_consent_record": 1, "not_granted_at_snapshot": 3, "withdrawn_since_snapshot": 1}
    assert split.allowed.height + split.excluded_total == frame.height  # nobody dropped silently
    assert split.allowed.columns == frame.columns


def test_marketing_uses_the_current_state_only():
    frame = pl.DataFrame({"customer_id": ["granted", "withdrew", "refused", "nobody"]})
    split = split_by_consent(frame, consent_state(CONSENTS.lazy()), "marketing")
    assert split.allowed.get_column("customer_id").to_list() == ["granted"]
    assert split.excluded == {"no_consent_record": 2, "not_granted": 1}


def test_unknown_purpose_is_refused():
    with pytest.raises(ValueError, match="unknown purpose"):
        split_by_consent(pl.DataFrame({"customer_id": ["a"]}), consent_state(CONSENTS.lazy()), "resale")
