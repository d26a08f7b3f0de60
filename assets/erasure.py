"""Erasure tombstones: keyed hashes of customers erased on request, which ingestion checks so that re-ingesting an
old landing day never brings an erased person back. Written by governance (dsar.py), read by ingestion; it imports
neither stage."""

from __future__ import annotations

import hashlib
import hmac

import polars as pl

TOMBSTONES_TABLE = ("governance", "erasure_tombstones")


def tombstone_hash(key: bytes, customer_id: str) -> str:
    """Keyed hash of an erased customer id. Its own domain ("erased:") so it never equals a pseudonym token."""
    return hmac.new(key, f"erased:{customer_id}".encode(), hashlib.sha256).hexdigest()


def tombstones(lake) -> set[str]:
    if not lake.exists(*TOMBSTONES_TABLE):
        return set()
    return set(lake.scan(*TOMBSTONES_TABLE).select("subject_hash").collect().get_column("subject_hash").to_list())


def drop_erased(frame: pl.DataFrame, customer_column: str | None, key: bytes,
                erased: set[str]) -> tuple[pl.DataFrame, int]:
    """Landing rows of erased customers, removed before validation (a tombstone outlives the landing file a
    source may send again). Hashes each distinct id once."""
    if not erased or frame.height == 0 or not customer_column or customer_column not in frame.columns:
        return frame, 0
    ids = frame.get_column(customer_column).cast(pl.Utf8).drop_nulls().unique().to_list()
    gone = [i for i in ids if tombstone_hash(key, i) in erased]
    if not gone:
        return frame, 0
    is_gone = pl.col(customer_column).cast(pl.Utf8).is_in(gone).fill_null(False)
    return frame.filter(~is_gone), frame.filter(is_gone).height
