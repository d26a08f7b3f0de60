"""Pseudonymisation at the door: validated rows leave ingestion with tokens instead of identifiers, and contact
details leave the pipeline for the restricted pii_vault.

Ingestion is the last step that sees identifiers in clear. Bronze, quarantine and everything built from them hold
the keyed token (`domain/pseudonym.py`) under the identifier's own column name, so dbt models, scores and reports
need no change to be keyed by it. The vault is the one place a token can be turned back into the customer's own
id and contact details (for a campaign hand-off or a data-subject request).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from domain.contract import LINEAGE_COLUMNS, TIMESTAMP, VAULT_SOURCE_ID, SourceSpec
from domain.pseudonym import Tokeniser, check_collisions

VAULT_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Utf8, VAULT_SOURCE_ID: pl.Utf8, "email": pl.Utf8, "phone": pl.Utf8, "full_name": pl.Utf8,
    "_partition_date": pl.Date, "_source_file": pl.Utf8, "_run_id": pl.Utf8, "_ingested_at": TIMESTAMP,
}


@dataclass(frozen=True)
class Pseudonymised:
    bronze: pl.DataFrame
    vault: pl.DataFrame | None  # None for a source without contact details


def pseudonymise_valid(valid: pl.DataFrame, spec: SourceSpec, tokens: Tokeniser) -> Pseudonymised:
    """Bronze rows (identifiers tokenised, contact details removed) and, for a source with contact details, the
    vault rows that keep them: one per bronze row, so a re-landed record updates the vault like it updates bronze."""
    bronze = tokens.columns(valid, spec.pseudonymised_columns).drop(spec.vaulted_columns, strict=False)
    if not spec.vaulted_columns:
        return Pseudonymised(bronze=bronze, vault=None)
    if valid.height == 0:
        return Pseudonymised(bronze=bronze, vault=empty_vault())
    if spec.customer_column is None:
        raise ValueError(f"{spec.name} has contact details but no customer column to key them by")
    raw_ids = valid.get_column(spec.customer_column).cast(pl.Utf8)
    vault = valid.select(
        tokens(raw_ids).alias("customer_id"), raw_ids.alias(VAULT_SOURCE_ID),
        *spec.vaulted_columns, *LINEAGE_COLUMNS,
    )
    check_collisions(vault, "customer_id", VAULT_SOURCE_ID)
    return Pseudonymised(bronze=bronze, vault=conform_vault(vault))


def conform_vault(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                        for c, t in VAULT_SCHEMA.items())


def empty_vault() -> pl.DataFrame:
    return pl.DataFrame(schema=VAULT_SCHEMA)


def protect_quarantined(raw: pl.DataFrame, spec: SourceSpec, tokens: Tokeniser) -> pl.DataFrame:
    """Quarantined raw records with every pii column tokenised, contact details included: an operator can still
    see which rows failed and why, and compare values between rows, but reads the clear value only in the landing
    file the row names."""
    return tokens.columns(raw, [c.name for c in spec.columns if c.tag == "pii"])
