"""The pseudonym key's fingerprint in the lake: written by the first run that uses a key, checked by every run that
tokenises (ingestion) or matches tokens (erasure, access), so a process started without the deployment's key, or
with a rotated one, is refused instead of writing tokens that match nobody. Read and written by ingestion and
governance; it imports neither stage."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from domain.pseudonym import KEY_ENV, key_fingerprint

KEY_TABLE = ("governance", "pseudonym_key")


class KeyMismatch(RuntimeError):
    pass


def checked_key(lake, key: bytes) -> bytes:
    """`key`, once the lake's fingerprint says it is the key its tokens were made with (the first use records it)."""
    mine = key_fingerprint(key)
    if not lake.exists(*KEY_TABLE):
        lake.append(*KEY_TABLE, pl.DataFrame({"fingerprint": [mine], "recorded_at": [datetime.now(UTC)]}))
        return key
    recorded = lake.scan(*KEY_TABLE).sort("recorded_at").collect().get_column("fingerprint").to_list()
    if recorded[0] != mine:
        raise KeyMismatch(
            f"the pseudonym key here (fingerprint {mine}) is not the one this lake's tokens were made with "
            f"(fingerprint {recorded[0]}): set {KEY_ENV}, or run where $ASSAY_HOME/secrets/pseudonym.key is the "
            "deployment's. With another key new tokens would match nobody, and an erasure would find nobody")
    return key
