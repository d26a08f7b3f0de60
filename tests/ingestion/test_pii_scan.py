"""Personal data in columns the contract does not tag as PII is masked at ingestion, rows kept and counted."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from assets.ingestion.pii_scan import mask_untagged_pii, scanned_columns
from assets.ingestion.validation import validate_batch
from domain.contract import SOURCES

EVENTS = SOURCES["events"]


def _events(pages: list[str | None]) -> pl.DataFrame:
    n = len(pages)
    return pl.DataFrame({
        "event_id": [f"E{i:09d}" for i in range(n)],
        "anonymous_id": [f"A{i:09d}" for i in range(n)],
        "device_id": ["D1"] * n,
        "customer_id": [f"C{i:07d}" for i in range(n)],
        "event_ts": [datetime(2025, 1, 6, 10, tzinfo=UTC)] * n,
        "event_type": ["search"] * n,
        "page": pages,
        "_source_file": ["f.parquet"] * n,
        "_partition_date": [date(2025, 1, 6)] * n,
    })


def test_only_free_text_columns_are_scanned():
    assert scanned_columns(EVENTS, EVENTS.column_names + ["note", "_source_file"]) == ["anonymous_id", "page", "note"]
    assert "email" not in scanned_columns(SOURCES["customers"], SOURCES["customers"].column_names)


def test_emails_phones_and_cards_are_masked_and_counted():
    pages = [
        "/search?q=jane.doe@example.co.uk",
        "/help?phone=+44 20 7946 0958",
        "/checkout?card=4111 1111 1111 1111",
        "/product/O000001234",  # an id's digits are not a phone number
        "/search?q=shoes",
        "/orders?from=2025-06-02&to=2025-06-30",  # dates are not phone numbers
        None,
    ]
    masked, counts = mask_untagged_pii(_events(pages), EVENTS)
    assert masked.get_column("page").to_list() == [
        "/search?q=[email]", "/help?phone=[phone]", "/checkout?card=[card]", "/product/O000001234",
        "/search?q=shoes", "/orders?from=2025-06-02&to=2025-06-30", None,
    ]
    assert counts == {"page:card": 1, "page:email": 1, "page:phone": 1}
    assert masked.get_column("event_id").to_list() == _events(pages).get_column("event_id").to_list()


def test_validation_keeps_every_row_and_reports_the_masking():
    result = validate_batch(_events(["/search?q=a.b@shop.example", "/search?q=boots"]), EVENTS, run_id="r")
    assert result.rows_valid + result.rows_quarantined == result.rows_in == 2
    assert result.pii_masked == {"page:email": 1}
    assert "@" not in "".join(result.valid.get_column("page").to_list())


def test_machine_strings_are_not_mistaken_for_personal_data():
    """UUIDs, decimals in JSON, dates and ids survive the scan untouched (the warehouse view scan relies on it)."""
    values = [
        "12345678-1234-1234-1234-123456789012",
        '{"auc": 0.8956861607794582, "rows": 49109}',
        "20261126T142013-96021d0a650b",
        "/reports/2025-06-02/retention_audience_2025-06-02.csv",
    ]
    frame = pl.DataFrame({"note": values, "event_id": ["e"] * len(values)})
    masked, counts = mask_untagged_pii(frame, EVENTS)
    assert counts == {} and masked.get_column("note").to_list() == values
