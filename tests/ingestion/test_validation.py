"""Row-level contract validation: every bad row is quarantined with its reason, nothing is lost."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from assets.ingestion.validation import ContractError, validate_batch
from domain.contract import CUSTOMERS, LINEAGE_COLUMNS, ORDERS

DAY = date(2024, 3, 5)


def at(hour: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def landing(frame: pl.DataFrame, day: date = DAY) -> pl.DataFrame:
    return frame.with_columns(pl.lit("landing/x.parquet").alias("_source_file"), pl.lit(day).alias("_partition_date"))


def orders(**overrides) -> pl.DataFrame:
    base = {
        "order_id": ["o1", "o2", "o3", "o4"],
        "customer_id": ["c1", "c2", "c3", "c4"],
        "order_ts": [at(1), at(2), at(3), at(4)],
        "amount": [10.0, 20.0, 30.0, 40.0],
        "n_items": [1, 2, 3, 4],
        "channel": ["web", "app", "store", "web"],
    }
    base.update(overrides)
    return landing(pl.DataFrame(base))


def test_clean_batch_is_all_valid_and_typed():
    result = validate_batch(orders(), ORDERS, run_id="r1")
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (4, 4, 0)
    assert result.valid.schema["order_ts"] == pl.Datetime("us", "UTC")
    assert result.valid.schema["n_items"] == pl.Int32
    assert set(LINEAGE_COLUMNS) <= set(result.valid.columns)
    assert result.valid.get_column("_run_id").unique().to_list() == ["r1"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"customer_id": ["c1", None, "c3", "c4"]}, "null_value:customer_id"),
        ({"amount": [10.0, -5.0, 30.0, 40.0]}, "greater_than_or_equal_to:amount"),
        ({"order_ts": [at(1), datetime(2099, 1, 1, tzinfo=UTC), at(3), at(4)]},
         "timestamp_outside_partition:order_ts"),
        ({"order_ts": [at(1), at(23, date(2024, 3, 4)), at(3), at(4)]}, "timestamp_outside_partition:order_ts"),
        ({"order_id": ["o1", "o1", "o3", "o4"]}, "duplicate_id:order_id"),
    ],
)
def test_each_kind_of_bad_row_is_quarantined_with_its_reason(overrides, reason):
    result = validate_batch(orders(**overrides), ORDERS, run_id="r1")
    assert result.rows_valid == 3
    assert result.quarantine.get_column("reason").to_list() == [reason]
    assert result.quarantine.get_column("record_id").to_list() == ["o2" if "order_id" not in overrides else "o1"]
    assert result.rows_in == result.rows_valid + result.rows_quarantined


def test_first_copy_of_a_duplicate_wins():
    result = validate_batch(orders(order_id=["o1", "o1", "o3", "o4"], amount=[1.0, 2.0, 3.0, 4.0]), ORDERS, "r")
    assert result.valid.filter(pl.col("order_id") == "o1").get_column("amount").to_list() == [1.0]


def test_repeats_within_a_batch_of_several_days_are_judged_as_each_day_alone():
    days = [DAY, DAY, DAY + timedelta(days=1), DAY + timedelta(days=1), DAY + timedelta(days=2)]
    frame = pl.concat([landing(orders(order_id=[f"u{i}", "o1", "o2", f"v{i}"], customer_id=[f"c{i}"] * 4,
                                      order_ts=[at(i % 20, day)] * 4), day) for i, day in enumerate(days)])
    result = validate_batch(frame, ORDERS, "r")
    # o1 and o2 come on every day; only their first arrival is kept, a same-day copy and a later day's copy each
    # get their own reason
    assert sorted(result.reasons.items()) == [("duplicate_id:order_id", 2), ("duplicate_id_earlier_day:order_id", 6)]
    kept = result.valid.filter(pl.col("order_id").is_in(["o1", "o2"])).select("order_id", "customer_id").rows()
    assert sorted(kept) == [("o1", "c0"), ("o2", "c0")]
    assert result.rows_valid == 12  # the ten u and v ids and the first o1 and o2

    customers = pl.concat([landing(pl.DataFrame({"customer_id": ["k1", "k1", f"k{i + 2}"],
                                                 "signup_ts": [at(1, day), at(2, day), at(3, day)]}), day)
                           for i, day in enumerate(days[1:4])])
    result = validate_batch(customers, CUSTOMERS, "r")
    # a repeat on a later day is a newer record of the account, kept; on the same day the first wins
    assert result.reasons == {"duplicate_id:customer_id": 4}
    assert result.valid.filter(pl.col("customer_id") == "k1").get_column("signup_ts").to_list() == [
        at(1, days[1]), at(1, days[2])]


def test_row_with_several_problems_lists_all_reasons_once():
    frame = orders(customer_id=[None, "c2", "c3", "c4"], amount=[-1.0, 20.0, 30.0, 40.0])
    result = validate_batch(frame, ORDERS, run_id="r1")
    reasons = result.quarantine.get_column("reason").to_list()
    assert reasons == ["greater_than_or_equal_to:amount;null_value:customer_id"]
    assert result.reasons == {"greater_than_or_equal_to:amount": 1, "null_value:customer_id": 1}


def test_csv_text_is_cast_and_uncastable_values_are_type_errors():
    frame = landing(pl.DataFrame({
        "order_id": ["o1", "o2"], "customer_id": ["c1", "c2"],
        "order_ts": ["2024-03-05T10:00:00", "not a time"], "amount": ["12.5", "abc"],
        "n_items": ["1", "2"], "channel": ["web", "web"],
    }))
    result = validate_batch(frame, ORDERS, run_id="r1")
    assert result.valid.get_column("amount").to_list() == [12.5]
    reasons = result.quarantine.get_column("reason").item()
    assert "type_error:amount" in reasons and "type_error:order_ts" in reasons
    assert '"amount":"abc"' in result.quarantine.get_column("record").item()


def test_a_malformed_email_is_nulled_and_the_customer_kept_while_a_backdated_signup_is_valid():
    frame = landing(pl.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4"],
        "email": ["ann@example.com", "bob#example", None, "dan#example"],
        "signup_ts": [datetime(2021, 6, 1, tzinfo=UTC), at(1), at(2), at(2) + timedelta(days=2)],
    }))
    result = validate_batch(frame, CUSTOMERS, run_id="r1")
    # bob keeps his place, without an email; dan's signup lies after the landing day, so dan is rejected
    assert result.valid.select("customer_id", "email").rows() == [("c1", "ann@example.com"), ("c2", None),
                                                                  ("c3", None)]
    quarantine = result.quarantine.select("customer_id", "reason", "disposition").rows()
    assert quarantine == [
        ("c2", "nulled_invalid:email", "value_nulled"),
        ("c4", "nulled_invalid:email;timestamp_outside_partition:signup_ts", "rejected"),
    ]
    assert '"email":"bob#example"' in result.quarantine.get_column("record")[0]  # the raw value, for the operator
    assert (result.rows_valid, result.rows_quarantined, result.values_nulled) == (3, 1, 1)
    assert result.rows_valid + result.rows_quarantined == result.rows_in


def test_unknown_extra_column_is_carried_not_rejected():
    result = validate_batch(orders().with_columns(pl.lit("SAVE10").alias("coupon_code")), ORDERS, run_id="r1")
    assert result.extra_columns == ("coupon_code",)
    assert result.valid.get_column("coupon_code").to_list() == ["SAVE10"] * 4


def test_missing_required_column_is_a_clear_error():
    with pytest.raises(ContractError, match="amount"):
        validate_batch(orders().drop("amount"), ORDERS, run_id="r1")


def test_missing_optional_column_becomes_null():
    result = validate_batch(orders().drop("channel"), ORDERS, run_id="r1")
    assert result.rows_valid == 4 and result.valid.get_column("channel").null_count() == 4


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), float("-inf")])
def test_an_amount_that_is_not_a_number_is_quarantined(amount):
    result = validate_batch(orders(amount=[10.0, amount, 30.0, 40.0]), ORDERS, run_id="r1")
    # NaN also reads as missing, and -inf as negative: every reason is listed
    assert result.rows_valid == 3 and "not_finite:amount" in result.quarantine.get_column("reason").item()


@pytest.mark.parametrize("n_items", [[1.0, 2.5, 3.0, 4.0], ["1", "2.5", "3", "4"]])
def test_a_fractional_count_is_a_type_error_not_a_truncation(n_items):
    result = validate_batch(orders(n_items=n_items), ORDERS, run_id="r1")
    assert result.valid.get_column("n_items").to_list() == [1, 3, 4]
    assert result.quarantine.get_column("reason").to_list() == ["type_error:n_items"]


def test_categories_match_in_any_case_and_are_stored_as_staging_reads_them():
    from domain.contract import CONSENTS

    frame = landing(pl.DataFrame({
        "consent_id": ["k1", "k2", "k3"], "customer_id": ["c1", "c2", "c3"],
        "purpose": ["Marketing", " PROFILING", "newsletter"], "granted": [True, False, True],
        "event_ts": [at(1), at(2), at(3)],
    }))
    result = validate_batch(frame, CONSENTS, run_id="r1")
    assert result.valid.get_column("purpose").to_list() == ["marketing", "profiling"]
    assert result.quarantine.get_column("reason").to_list() == ["allowed_values:purpose"]
    assert '"purpose":"newsletter"' in result.quarantine.get_column("record").item()


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
    ("20240301", datetime(2024, 3, 1, tzinfo=UTC)),
    ("2024-03-01 10:30:00", datetime(2024, 3, 1, 10, 30, tzinfo=UTC)),
    ("2024-03-01T12:30:00+02:00", datetime(2024, 3, 1, 10, 30, tzinfo=UTC)),
    ("2024-03-01T10:30:00.250Z", datetime(2024, 3, 1, 10, 30, 0, 250_000, tzinfo=UTC)),
    ("1709289000", datetime(2024, 3, 1, 10, 30, tzinfo=UTC)),
    (1709289000, datetime(2024, 3, 1, 10, 30, tzinfo=UTC)),  # an integer column: epoch seconds, not microseconds
    (date(2024, 3, 1), datetime(2024, 3, 1, tzinfo=UTC)),
    ("01/03/2024", None),  # day or month first? a type error, not a guess
])
def test_timestamps_as_exports_write_them(value, expected):
    day = date(2024, 3, 1)
    frame = landing(pl.DataFrame({"order_id": ["o1"], "customer_id": ["c1"], "order_ts": [value], "amount": [1.0],
                                  "n_items": [1], "channel": ["web"]}), day)
    result = validate_batch(frame, ORDERS, run_id="r1")
    if expected is None:
        assert "type_error:order_ts" in result.reasons and result.rows_valid == 0
    else:
        assert result.valid["order_ts"].to_list() == [expected]
