"""Landing files as they come: compressed, upper-case names, other delimiters, a byte-order mark. Every variant of
the same rows reads as the same frame; what is not a landing file is left alone."""

from __future__ import annotations

import codecs
import gzip
from datetime import date

import polars as pl
import pytest

from assets.ingestion.landing import landing_file_bytes, landing_format, read_landing, read_landing_file

ROWS = pl.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["0042", "7"], "amount": ["12.50", "3"]})
CSV = "order_id,customer_id,amount\no1,0042,12.50\no2,7,3\n"


def write_variant(folder, name: str) -> None:
    path = folder / name
    text = CSV
    if "semicolon" in name:
        text = text.replace(",", ";")
    if "tab" in name:
        text = text.replace(",", "\t")
    if name.lower().removesuffix(".gz").endswith((".jsonl", ".json")):
        text = "".join(f'{{"order_id": "{o}", "customer_id": "{c}", "amount": "{a}"}}\n'
                       for o, c, a in ROWS.iter_rows())
    data = text.encode()
    if "bom" in name:
        data = codecs.BOM_UTF8 + data
    if name.lower().endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


VARIANTS = ["plain.csv", "UPPER.CSV", "semicolon.csv", "tab.csv", "bom.csv", "packed.csv.gz", "bom_packed.CSV.GZ",
            "lines.jsonl", "lines.jsonl.gz"]


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_reads_as_the_same_rows_with_ids_as_text(tmp_path, name):
    write_variant(tmp_path, name)
    assert read_landing_file(tmp_path / name).select(ROWS.columns).equals(ROWS)


def test_a_day_folder_reads_every_landing_file_and_nothing_else(tmp_path):
    folder = tmp_path / "orders" / "date=2025-01-06"
    folder.mkdir(parents=True)
    for name in VARIANTS:
        write_variant(folder, name)
    (folder / ".plain.csv.swp").write_text("editor state")
    (folder / "notes.txt").write_text("not data")
    batch = read_landing(tmp_path, "orders", date(2025, 1, 6), date(2025, 1, 7))
    assert batch.frame.height == 2 * len(VARIANTS) and len(batch.files) == len(VARIANTS)
    assert sorted(p.rsplit("/", 1)[-1] for p in batch.ignored) == [".plain.csv.swp", "notes.txt"]
    assert (landing_format(folder / ".plain.csv.swp"), landing_format(folder / "notes.txt")) == (None, None)


@pytest.mark.parametrize("name", ["semicolon.csv", "packed.csv.gz", "lines.jsonl.gz"])
def test_a_rewritten_file_keeps_its_format(tmp_path, name):
    """An erasure rewrites a landing file without a person's rows, in the file's own format."""
    write_variant(tmp_path, name)
    path = tmp_path / name
    kept = read_landing_file(path).filter(pl.col("order_id") == "o2")
    path.write_bytes(landing_file_bytes(kept, path))
    assert read_landing_file(path).select(ROWS.columns).equals(ROWS.filter(pl.col("order_id") == "o2"))
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    if "semicolon" in name:
        assert path.read_text().splitlines()[0] == "order_id;customer_id;amount"
