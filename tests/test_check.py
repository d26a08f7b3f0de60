"""`assay check` on real files: what it reports per source, and the plain reasons it gives when data cannot work.
No value from a row ever appears in what it prints."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from domain.public_data import cdnow_environment, land_cdnow
from domain.settings import AssaySettings
from orchestration.check import check_landing, report_lines

END = date(1998, 7, 1)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("check") / "exports"
    land_cdnow(folder, "sample")
    return folder


def settings_for(exports, tmp_path, **overrides) -> AssaySettings:
    return AssaySettings.from_env({"ASSAY_HOME": str(tmp_path / "home"), **cdnow_environment(exports), **overrides})


def test_files_that_can_run_are_profiled_and_pass(exports, tmp_path):
    report = check_landing(settings_for(exports, tmp_path), END)
    assert report.ok and report.problems == []
    customers, orders = report.sources[0], report.sources[1]
    assert (customers.rows, customers.valid_rows, orders.rows, orders.valid_rows) == (2357, 2357, 6919, 6919)
    assert "country" in customers.missing and orders.mapped[:3] == ["order_id", "customer_id", "order_ts"]
    assert orders.event_range == (date(1997, 1, 1), date(1998, 6, 30))
    assert (report.snapshots, report.matured_snapshots, report.needed_snapshots) == (65, 52, 29)
    assert report_lines(report)[-1] == "OK: these files can run end to end."


def test_too_short_a_history_says_what_the_horizon_needs(exports, tmp_path):
    settings = settings_for(exports, tmp_path, ASSAY_END_DATE="1997-09-01")
    report = check_landing(settings, date(1997, 9, 1))
    assert not report.ok
    assert "too little history for a 90-day churn horizon: a model needs 29" in report.problems[0]
    assert "these files give 9 (of 22 snapshots from 1997-04-07)" in report.problems[0]
    assert report_lines(report)[-1].startswith("NOT READY")


def test_a_missing_required_source_or_column_is_named(exports, tmp_path):
    only_orders = tmp_path / "only_orders"
    shutil.copytree(exports / "orders", only_orders / "orders")
    early = date(1997, 3, 1)  # two months are enough to find what is missing
    report = check_landing(settings_for(only_orders, tmp_path, ASSAY_END_DATE=early.isoformat()), early)
    assert report.problems[0].startswith("customers is required and has no landing files")
    unmapped = check_landing(settings_for(exports, tmp_path, ASSAY_COLUMN_MAPPING="{}",
                                          ASSAY_END_DATE=early.isoformat()), early)
    assert any("lack required column(s)" in p and "ASSAY_COLUMN_MAPPING" in p for p in unmapped.problems)


def test_rows_that_would_be_quarantined_are_counted_by_reason_never_shown(exports, tmp_path):
    messy = tmp_path / "messy"
    shutil.copytree(exports, messy)
    day = messy / "orders" / "date=1997-02-03"
    day.mkdir(exist_ok=True)
    (day / "export.log").write_text("a file the shop's exporter leaves behind")
    (day / "late_export.csv").write_text("order_ref,cust,purchased_on,cds,dollars\n"
                                         "X1,00004,1997-02-03,2,-5.00\nX2,00005,1997-02-03,2.5,9.99\n")
    (day / "part-2.csv.gz").write_bytes(b"not gzip at all")
    (messy / "orders" / "old exports").mkdir()
    early = date(1997, 3, 1)
    report = check_landing(settings_for(messy, tmp_path, ASSAY_END_DATE=early.isoformat()), early)
    orders = report.sources[1]
    assert orders.quarantined == {"greater_than_or_equal_to:amount": 1, "type_error:n_items": 1}
    assert (orders.ignored, orders.unreadable, orders.strays) == (1, {"corrupt_gzip": 1}, 1)
    printed = "\n".join(report_lines(report))
    assert "unreadable files (file quarantine): corrupt_gzip 1" in printed
    assert "greater_than_or_equal_to:amount 1" in printed and "00004" not in printed and "-5.00" not in printed
