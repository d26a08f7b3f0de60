"""Markdown for asset metadata (Dagster renders it in the UI); shared by every stage, importing none."""

from __future__ import annotations

import base64
from pathlib import Path


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


def png_data_uri(path: Path) -> str:
    """A PNG file as a data URI: the UI renders Markdown metadata in the browser, which cannot read the run's files."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def markdown_figures(figures: dict[str, Path]) -> str:
    """Markdown showing each PNG under its title, inlined (see `png_data_uri`)."""
    return "\n\n".join(f"**{title}**\n\n![{title}]({png_data_uri(path)})" for title, path in figures.items())
