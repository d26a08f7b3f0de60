"""Alerts: an append-only Delta table is the record; a log line and an optional webhook tell people."""

from __future__ import annotations

import email.utils
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from resources.lake import LakeResource

ALERTS_TABLE = ("gold", "alerts")
WEBHOOK_ENV = "ASSAY_ALERT_WEBHOOK"
LOGGED_ALERTS = 5  # per call; the table holds all of them
MAX_RETRY_AFTER_SECONDS = 60.0  # a receiver asking for a longer pause gets no more tries from this run
ALERT_SCHEMA = {"raised_at": pl.Datetime("us", "UTC"), "source": pl.Utf8, "snapshot_date": pl.Date,
                "metric": pl.Utf8, "column": pl.Utf8, "value": pl.Float64, "severity": pl.Utf8, "limit": pl.Float64,
                "run_id": pl.Utf8}


def check_webhook_url(url: str) -> None:
    """Only http(s): urllib would also open file:// and ftp:// URLs. The error names the scheme only, since the
    rest of a webhook URL is often its token."""
    scheme = urllib.parse.urlsplit(url).scheme
    if url and scheme not in ("http", "https"):
        raise ValueError(f"{WEBHOOK_ENV} must be an http or https URL, not {scheme or 'a bare path'}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the error it is for a webhook: the alerts go to the configured URL or nowhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 (urllib's signature)
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header as seconds to wait: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class AlertsResource(ConfigurableResource):
    lake: LakeResource
    webhook_url: str = Field("", description="POST alerts as JSON here (http or https, ASSAY_ALERT_WEBHOOK); "
                                             "empty = none.")
    timeout_seconds: float = Field(5.0, description="Per-attempt HTTP timeout.")
    retries: int = Field(3, description="Attempts after the first one, on a network error, an HTTP 5xx or a 429.")
    backoff_seconds: float = Field(0.5, description="Wait before retry k is backoff * 2**k (a 429's Retry-After "
                                                    "wins, up to a minute).")

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
        try:
            check_webhook_url(self.webhook_url)
        except ValueError as error:
            return f"refused: {error}"
        body = json.dumps({"source": source, "alerts": alerts.to_dicts()}, default=str).encode()
        last_error, wait = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(wait or self.backoff_seconds * 2 ** (attempt - 1))
            wait = 0.0
            request = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with _OPENER.open(request, timeout=self.timeout_seconds) as response:
                    return f"sent (HTTP {response.status}, attempt {attempt + 1})"
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code}"
                if 300 <= error.code < 400:
                    last_error += " (a redirect, not followed)"
                    break
                if error.code == 429:
                    asked = retry_after_seconds(error.headers.get("Retry-After"))
                    if asked is not None and asked > MAX_RETRY_AFTER_SECONDS:
                        last_error += f" (retry after {asked:.0f} s, longer than this run waits)"
                        break
                    wait = asked or 0.0
                elif error.code < 500:
                    break  # the receiver refuses this payload; retrying will not help
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                last_error = type(getattr(error, "reason", error)).__name__  # not its text: it may quote the URL
        return f"failed after {attempt + 1} attempt(s): {last_error}"
