"""Alerts: an append-only Delta table is the record; a log line and an optional webhook tell people."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from resources.lake import LakeResource

ALERTS_TABLE = ("gold", "alerts")
LOGGED_ALERTS = 5  # per call; the table holds all of them
ALERT_SCHEMA = {"raised_at": pl.Datetime("us", "UTC"), "source": pl.Utf8, "snapshot_date": pl.Date,
                "metric": pl.Utf8, "column": pl.Utf8, "value": pl.Float64, "severity": pl.Utf8, "limit": pl.Float64,
                "run_id": pl.Utf8}


class AlertsResource(ConfigurableResource):
    lake: LakeResource
    webhook_url: str = Field("", description="POST alerts as JSON here (ASSAY_ALERT_WEBHOOK); empty = none.")
    timeout_seconds: float = Field(5.0, description="Per-attempt HTTP timeout.")
    retries: int = Field(3, description="Attempts after the first one, on a network error or an HTTP 5xx.")
    backoff_seconds: float = Field(0.5, description="Wait before retry k is backoff * 2**k.")

    def raise_alerts(self, findings: pl.DataFrame, source: str, run_id: str,
                     log: logging.Logger | None = None) -> dict:
        """Record `findings` (snapshot_date, metric, column, value, severity, limit) and notify. Never raises on a
        webhook failure: the table is the record; the result says what the webhook did."""
        if findings.height == 0:
            return {"alerts": 0, "webhook": "nothing to send"}
        alerts = findings.with_columns(
            pl.lit(datetime.now(UTC)).alias("raised_at"), pl.lit(source).alias("source"),
            pl.lit(run_id).alias("run_id"),
        ).select([pl.col(c).cast(t) for c, t in ALERT_SCHEMA.items()])
        self.lake.append(*ALERTS_TABLE, alerts)
        log = log or logging.getLogger("assay.alerts")
        # errors first; a backfill over many snapshots would otherwise bury the log in one line per finding
        ordered = alerts.sort(pl.col("severity") != "error", pl.col("snapshot_date"), descending=[False, True])
        for row in ordered.head(LOGGED_ALERTS).iter_rows(named=True):
            message = (f"[{row['severity']}] {source} {row['snapshot_date']}: {row['metric']} of {row['column']} = "
                       f"{row['value']:.4g} (limit {row['limit']:.4g})")
            (log.error if row["severity"] == "error" else log.warning)(message)
        if alerts.height > LOGGED_ALERTS:
            log.warning(f"{source}: {alerts.height - LOGGED_ALERTS} more alert(s) in gold/alerts")
        return {"alerts": alerts.height, "webhook": self._post(alerts, source)}

    def _post(self, alerts: pl.DataFrame, source: str) -> str:
        if not self.webhook_url:
            return "not configured"
        body = json.dumps({"source": source, "alerts": alerts.to_dicts()}, default=str).encode()
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            request = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    return f"sent (HTTP {response.status}, attempt {attempt + 1})"
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code}"
                if error.code < 500:
                    break  # the receiver refuses this payload; retrying will not help
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                last_error = str(getattr(error, "reason", error))
        return f"failed after {attempt + 1} attempt(s): {last_error}"
