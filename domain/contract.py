"""The raw-data contract: what each landing source must look like.

One place defines every source's columns, types, privacy tags and row checks. Ingestion builds its pandera
schemas from it, the synthetic generator writes to it, the README documents it, and users bringing their own
files map their columns onto it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

Tag = Literal["pii", "sensitive", "public"]

TIMESTAMP = pl.Datetime("us", "UTC")
EMAIL_PATTERN = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: pl.DataType
    nullable: bool = True
    tag: Tag = "public"
    description: str = ""
    min_value: float | None = None
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    # A value breaking `pattern` is nulled rather than rejecting the row (the raw value goes to the quarantine as a
    # record of the repair): a mistyped email must not cost the customer their place in features and scores.
    null_if_invalid: bool = False
    # An identifier replaced by its keyed token from bronze onward (see domain/pseudonym.py). A pii column that is
    # not pseudonymised is a contact detail: it leaves the pipeline for the pii_vault and nowhere else.
    pseudonymised: bool = False


@dataclass(frozen=True)
class SourceSpec:
    name: str
    required: bool
    id_column: str
    time_column: str
    description: str
    columns: tuple[ColumnSpec, ...]
    # Customers arrive as records whose signup can predate the landing day (an existing base being loaded);
    # for every other source the event time must fall inside the landing day.
    allow_backdated: bool = False
    customer_column: str | None = "customer_id"
    extra: dict = field(default_factory=dict)
    # An id that an earlier landing day already delivered: for customers a newer record of the account (staging
    # keeps the latest); for every other source a duplicate, quarantined at ingestion (the first arrival wins).
    repeat_is_update: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def pseudonymised_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pseudonymised]

    @property
    def vaulted_columns(self) -> list[str]:
        """Contact details: kept only in the pii_vault, never in bronze or anything after it."""
        return [c.name for c in self.columns if c.tag == "pii" and not c.pseudonymised]

    @property
    def bronze_columns(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.name not in self.vaulted_columns]


def customer_key(description: str, nullable: bool = False) -> ColumnSpec:
    """A source's customer_id: personal data, pseudonymised from bronze on."""
    return ColumnSpec("customer_id", pl.Utf8, nullable=nullable, tag="pii", pseudonymised=True,
                      description=description)


CUSTOMERS = SourceSpec(
    name="customers",
    required=True,
    id_column="customer_id",
    time_column="signup_ts",
    allow_backdated=True,
    repeat_is_update=True,
    description="One record per customer account, landed on the day it is created or first exported.",
    columns=(
        customer_key("Stable customer key."),
        ColumnSpec("email", pl.Utf8, tag="pii", pattern=EMAIL_PATTERN, null_if_invalid=True,
                   description="Contact email; a malformed one is nulled (the row is kept) and noted in quarantine."),
        ColumnSpec("phone", pl.Utf8, tag="pii", description="Contact phone number."),
        ColumnSpec("full_name", pl.Utf8, tag="pii", description="Customer name."),
        ColumnSpec("gender", pl.Utf8, tag="sensitive", allowed=("f", "m", "x"), description="Self-declared gender."),
        ColumnSpec("birth_year", pl.Int32, tag="sensitive", min_value=1900, description="Year of birth."),
        ColumnSpec("country", pl.Utf8, description="ISO country code."),
        ColumnSpec("acquisition_channel", pl.Utf8, description="Channel that brought the customer."),
        ColumnSpec("signup_ts", TIMESTAMP, nullable=False, description="When the account was created (UTC)."),
    ),
)

ORDERS = SourceSpec(
    name="orders",
    required=True,
    id_column="order_id",
    time_column="order_ts",
    description="One record per completed order.",
    columns=(
        ColumnSpec("order_id", pl.Utf8, nullable=False, description="Order key, unique."),
        customer_key("Who placed the order."),
        ColumnSpec("order_ts", TIMESTAMP, nullable=False, description="When the order was placed (UTC)."),
        ColumnSpec("amount", pl.Float64, nullable=False, min_value=0.0, description="Order value, tax included."),
        ColumnSpec("n_items", pl.Int32, min_value=1, description="Number of items."),
        ColumnSpec("channel", pl.Utf8, description="Sales channel (web, app, store, ...)."),
    ),
)

EVENTS = SourceSpec(
    name="events",
    required=False,
    id_column="event_id",
    time_column="event_ts",
    description="Clickstream events; customer_id is null for anonymous visitors.",
    columns=(
        ColumnSpec("event_id", pl.Utf8, nullable=False, description="Event key, unique."),
        ColumnSpec("anonymous_id", pl.Utf8, description="Cookie-level visitor id."),
        ColumnSpec("device_id", pl.Utf8, tag="pii", pseudonymised=True, description="Device fingerprint."),
        customer_key("Logged-in customer, if known.", nullable=True),
        ColumnSpec("event_ts", TIMESTAMP, nullable=False, description="When the event happened (UTC)."),
        ColumnSpec(
            "event_type",
            pl.Utf8,
            nullable=False,
            allowed=("page_view", "search", "add_to_cart", "login", "support"),
            description="What happened.",
        ),
        ColumnSpec("page", pl.Utf8, description="Page path."),
    ),
)

CAMPAIGN_TOUCHES = SourceSpec(
    name="campaign_touches",
    required=False,
    id_column="touch_id",
    time_column="sent_ts",
    description="One record per campaign message sent; control-group members are recorded but not contacted.",
    columns=(
        ColumnSpec("touch_id", pl.Utf8, nullable=False, description="Touch key, unique."),
        customer_key("Recipient."),
        ColumnSpec("campaign_id", pl.Utf8, nullable=False, description="Campaign key."),
        ColumnSpec("channel", pl.Utf8, allowed=("email", "sms", "push"), description="Delivery channel."),
        ColumnSpec("sent_ts", TIMESTAMP, nullable=False, description="When it was sent (UTC)."),
        ColumnSpec("opened_ts", TIMESTAMP, description="When it was opened, if it was."),
        ColumnSpec("clicked_ts", TIMESTAMP, description="When it was clicked, if it was."),
        ColumnSpec("is_control", pl.Boolean, nullable=False, description="Held out as randomised control."),
    ),
)

CONSENTS = SourceSpec(
    name="consents",
    required=False,
    id_column="consent_id",
    time_column="event_ts",
    description="Consent grants and withdrawals per customer and purpose; the latest event before a date wins.",
    columns=(
        ColumnSpec("consent_id", pl.Utf8, nullable=False, description="Consent event key, unique."),
        customer_key("Whose consent."),
        ColumnSpec(
            "purpose", pl.Utf8, nullable=False, allowed=("profiling", "marketing"), description="What it covers."
        ),
        ColumnSpec("granted", pl.Boolean, nullable=False, description="True for a grant, false for a withdrawal."),
        ColumnSpec("event_ts", TIMESTAMP, nullable=False, description="When it was given or withdrawn (UTC)."),
    ),
)

SOURCES: dict[str, SourceSpec] = {s.name: s for s in (CUSTOMERS, ORDERS, EVENTS, CAMPAIGN_TOUCHES, CONSENTS)}
REQUIRED_SOURCES = tuple(name for name, spec in SOURCES.items() if spec.required)

# The one restricted table that holds contact details in clear, keyed by the customer's token.
VAULT_TABLE = ("restricted", "pii_vault")
VAULT_SOURCE_ID = "source_customer_id"  # the customer's own id, as the source system knows it

# Columns ingestion adds to every bronze row.
PARTITION_COLUMN = "_partition_date"
LINEAGE_COLUMNS = ("_partition_date", "_source_file", "_run_id", "_ingested_at")


def tagged_columns(tag: Tag) -> dict[str, list[str]]:
    """Columns carrying `tag`, by source (used for column metadata and for excluding features)."""
    return {
        name: [c.name for c in spec.columns if c.tag == tag]
        for name, spec in SOURCES.items()
        if any(c.tag == tag for c in spec.columns)
    }
