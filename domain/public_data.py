"""A real public customer transaction log, landed the way a shop would export it.

CDNOW (Fader, Hardie and Lee, 2005): every purchase of the 23,570 customers who first bought from the online CD
shop CDNOW in the first quarter of 1997, through June 1998; 69,659 rows of customer, day, number of CDs and dollar
value. It ships inside the `Lifetimes` wheel on PyPI (a pinned dependency), with a 1-in-10 sample of the customers;
the files are read from the installed distribution without importing the package.

Nothing else is known about the customers: no sign-up time (the first purchase stands in), no country, channel,
gender or birth year, no events, campaigns or consents. The landing files keep the shop's own column names and the
data's own shape (ids with leading zeros, dates without a time); `CDNOW_COLUMN_MAPPING` maps them onto the contract.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, datetime
from importlib.metadata import distribution
from pathlib import Path

CDNOW_FILES = {"full": "CDNOW_master.txt", "sample": "CDNOW_sample.txt"}
# The shop's own column names, as ASSAY_COLUMN_MAPPING takes them: {source: {their column: contract column}}.
CDNOW_COLUMN_MAPPING = {
    "customers": {"cust": "customer_id", "first_purchase": "signup_ts"},
    "orders": {"order_ref": "order_id", "cust": "customer_id", "purchased_on": "order_ts", "cds": "n_items",
               "dollars": "amount"},
}
# The settings a home needs for this history: partitions over the 18 months, weekly snapshots from the first Monday
# after the acquisition quarter, a 90-day churn horizon.
CDNOW_SETTINGS = {
    "ASSAY_SOURCE": "files",
    "ASSAY_START_DATE": "1997-01-01",
    "ASSAY_END_DATE": "1998-07-01",
    "ASSAY_SNAPSHOT_START": "1997-04-07",
    "ASSAY_LABEL_HORIZON_DAYS": "90",
    "ASSAY_PROFILING_LEGAL_BASIS": "legitimate_interest",
}


@dataclass(frozen=True)
class Purchase:
    customer: str
    day: date
    cds: int
    dollars: float


def cdnow_path(which: str = "sample") -> Path:
    """The CDNOW file inside the installed Lifetimes distribution."""
    if which not in CDNOW_FILES:
        raise ValueError(f"unknown CDNOW file {which!r}; choose one of {sorted(CDNOW_FILES)}")
    path = Path(str(distribution("Lifetimes").locate_file(f"lifetimes/datasets/{CDNOW_FILES[which]}")))
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the Lifetimes wheel (constraints.txt) ships it; "
                                "run `make install`")
    return path


def read_cdnow(which: str = "sample") -> list[Purchase]:
    """Purchases in file order. The sample has a second id column (its own numbering), which is dropped."""
    purchases = []
    for line in cdnow_path(which).read_text().splitlines():
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue  # the header
        customer, day, cds, dollars = fields[0], fields[-3], fields[-2], fields[-1]
        purchases.append(Purchase(customer, datetime.strptime(day, "%Y%m%d").date(), int(cds), float(dollars)))
    return purchases


def land_cdnow(landing: Path, which: str = "sample") -> dict[str, int]:
    """Write CDNOW into `landing` as daily CSV exports: `orders/date=<day>/orders.csv` with that day's purchases and
    `customers/date=<day>/customers.csv` with the customers whose first purchase it was. Refuses a landing folder
    that already holds files of either source. Returns rows per source."""
    for source in ("customers", "orders"):
        if (landing / source).exists() and any((landing / source).iterdir()):
            raise FileExistsError(f"{landing / source} is not empty: land CDNOW into a folder of its own")
    purchases = read_cdnow(which)
    orders: dict[date, list[list[str]]] = {}
    first: dict[str, date] = {}
    sequence: dict[tuple[str, date], int] = {}
    for purchase in purchases:
        key = (purchase.customer, purchase.day)
        sequence[key] = sequence.get(key, 0) + 1
        # CDNOW has no order id: the customer, the day and the purchase's place in that day make one
        order_ref = f"{purchase.customer}-{purchase.day:%Y%m%d}-{sequence[key]}"
        orders.setdefault(purchase.day, []).append(
            [order_ref, purchase.customer, purchase.day.isoformat(), str(purchase.cds), f"{purchase.dollars:.2f}"])
        first[purchase.customer] = min(first.get(purchase.customer, purchase.day), purchase.day)
    customers: dict[date, list[list[str]]] = {}
    for customer, day in sorted(first.items()):
        customers.setdefault(day, []).append([customer, day.isoformat()])
    _write_days(landing / "orders", "orders.csv", ["order_ref", "cust", "purchased_on", "cds", "dollars"], orders)
    _write_days(landing / "customers", "customers.csv", ["cust", "first_purchase"], customers)
    return {"customers": len(first), "orders": len(purchases)}


def _write_days(folder: Path, name: str, header: list[str], rows_by_day: dict[date, list[list[str]]]) -> None:
    for day, rows in sorted(rows_by_day.items()):
        target = folder / f"date={day.isoformat()}"
        target.mkdir(parents=True, exist_ok=True)
        with (target / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)


def cdnow_environment(landing: Path) -> dict[str, str]:
    """The environment of a home that runs on the CDNOW files in `landing`."""
    return {**CDNOW_SETTINGS, "ASSAY_LANDING_DIR": str(landing),
            "ASSAY_COLUMN_MAPPING": json.dumps(CDNOW_COLUMN_MAPPING)}
