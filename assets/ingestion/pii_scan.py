"""Ingestion-time scan for personal data where the contract does not expect it.

Columns tagged `pii` are expected to hold personal data and are governed as such. Free-text columns that are not
(a page URL, a coupon code, any column a source adds on its own) can still carry an email address typed into a
search box or a phone number pasted into a note. Those values are masked before anything is written, bronze and
quarantine alike, and counted, so the lake holds no personal data outside the columns that declare it.
"""

from __future__ import annotations

import polars as pl

from domain.contract import SourceSpec

# Digit runs only count when they stand alone: not inside a word, an id (O000123), a decimal (0.8956...) or a
# dash-joined token such as a UUID. The guards are captured and written back when a match is masked.
_BEFORE = r"(?P<pre>^|[^\w.\-])"
_AFTER = r"(?P<post>$|[^\w\-])"

# Checked in this order: a card number would also match the phone pattern.
PII_PATTERNS: dict[str, str] = {
    "email": r"(?P<pre>)[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?P<post>)",
    # 13-19 digits, optionally grouped by spaces or dashes
    "card": _BEFORE + r"(?:\d[ \-]?){12,18}\d" + _AFTER,
    # an optional country code, then 2-4 + 3-4 + 3-4 digits with optional space/dash separators; a date such as
    # 2025-06-02 does not qualify
    "phone": _BEFORE + r"(?:\+\d{1,3}[ \-]?)?\(?\d{2,4}\)?[ \-]?\d{3,4}[ \-]?\d{3,4}" + _AFTER,
}


def mask_token(kind: str) -> str:
    """Replacement text: the guards around the match are kept, the personal data becomes `[kind]`."""
    return f"${{pre}}[{kind}]${{post}}"


def scanned_columns(spec: SourceSpec, columns: list[str]) -> list[str]:
    """Text columns that could hide personal data: contract text columns that are not tagged pii, are not keys and
    have no closed vocabulary or format of their own, plus every column the contract does not know."""
    keys = {spec.id_column, spec.customer_column}
    known = {c.name: c for c in spec.columns}
    scanned = []
    for name in columns:
        if name.startswith("_") or name in keys:
            continue
        col = known.get(name)
        if col is None or (col.dtype == pl.Utf8 and col.tag != "pii" and col.allowed is None and col.pattern is None):
            scanned.append(name)
    return scanned


def mask_untagged_pii(frame: pl.DataFrame, spec: SourceSpec) -> tuple[pl.DataFrame, dict[str, int]]:
    """Replace personal-data-looking substrings in the scanned columns; returns the frame (same rows, same order)
    and the number of values masked per `column:kind`."""
    counts: dict[str, int] = {}
    replaced = []
    for name in scanned_columns(spec, frame.columns):
        if frame.schema[name] != pl.Utf8:
            continue
        value = pl.col(name)
        for kind, pattern in PII_PATTERNS.items():
            hits = int(frame.select(value.str.contains(pattern).sum()).item() or 0) if frame.height else 0
            if hits:
                counts[f"{name}:{kind}"] = hits
                value = value.str.replace_all(pattern, mask_token(kind))
        replaced.append(value.alias(name))
    if not counts:
        return frame, counts
    # the kinds are applied in order; a value holding both an email and a phone number is counted under both
    return frame.with_columns(replaced), dict(sorted(counts.items()))
