"""Markdown for asset metadata (Dagster renders it in the UI); shared by every stage, importing none."""

from __future__ import annotations


def markdown_table(rows: list[dict], digits: int = 4) -> str:
    """A Markdown table of `rows` (their keys are the header); floats rounded to `digits`."""
    if not rows:
        return "(none)"
    headers = list(rows[0])

    def cell(value) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(r.get(h)) for h in headers) + " |" for r in rows]
    return "\n".join(lines)
