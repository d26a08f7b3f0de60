"""Alerts land in an append-only Delta table and are POSTed to a webhook with retries and a timeout; a local HTTP
receiver stands in for the chat tool."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer

import polars as pl
import pytest

from resources.alerts import ALERTS_TABLE, AlertsResource
from resources.lake import LakeResource

FINDINGS = pl.DataFrame({
    "snapshot_date": [date(2025, 6, 2)] * 2, "metric": ["psi", "auc_decay"], "column": ["recency_days", "*"],
    "value": [0.4, 0.06], "severity": ["error", "error"], "limit": [0.25, 0.05],
})


class Receiver:
    """Answers the first `failures` POSTs with HTTP 503 (or with `answers`: (status, headers) each), then 200;
    keeps every body it got and when it got it."""

    def __init__(self, failures: int = 0, answers: list[tuple[int, dict]] | None = None) -> None:
        self.bodies: list[dict] = []
        self.times: list[float] = []
        self.answers = answers if answers is not None else [(503, {})] * failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                receiver.times.append(time.monotonic())
                n = len(receiver.bodies)
                status, headers = receiver.answers[n - 1] if n <= len(receiver.answers) else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lake(tmp_path):
    return LakeResource(root=str(tmp_path / "lake"))


def test_alerts_are_recorded_and_posted_after_retrying_a_failing_receiver(lake):
    receiver = Receiver(failures=2)
    try:
        alerts = AlertsResource(lake=lake, webhook_url=receiver.url, retries=3, backoff_seconds=0.01)
        result = alerts.raise_alerts(FINDINGS, "monitoring/drift_summary", "run-1")
    finally:
        receiver.close()
    assert result == {"alerts": 2, "webhook": "sent (HTTP 200, attempt 3)"}
    assert len(receiver.bodies) == 3 and receiver.bodies[-1]["source"] == "monitoring/drift_summary"
    assert {a["metric"] for a in receiver.bodies[-1]["alerts"]} == {"psi", "auc_decay"}
    stored = lake.scan(*ALERTS_TABLE).collect()
    assert stored.height == 2 and set(stored.get_column("run_id")) == {"run-1"}
    alerts.raise_alerts(FINDINGS.head(1), "monitoring/drift_summary", "run-2")
    assert lake.scan(*ALERTS_TABLE).collect().height == 3  # appended, never replaced


def test_an_unreachable_webhook_is_reported_not_raised(lake):
    receiver = Receiver()
    url = receiver.url
    receiver.close()  # nothing listens there any more
    alerts = AlertsResource(lake=lake, webhook_url=url, retries=1, backoff_seconds=0.01, timeout_seconds=1)
    result = alerts.raise_alerts(FINDINGS, "monitoring/model_performance", "run-1")
    assert result["webhook"].startswith("failed after 2 attempt(s)")
    assert lake.scan(*ALERTS_TABLE).collect().height == 2  # the record does not depend on the webhook


def test_no_findings_no_alert_and_no_webhook_configured(lake):
    assert AlertsResource(lake=lake).raise_alerts(FINDINGS.head(0), "x", "r")["alerts"] == 0
    assert AlertsResource(lake=lake).raise_alerts(FINDINGS, "x", "r")["webhook"] == "not configured"


def test_many_findings_log_the_errors_first_and_a_count_of_the_rest(lake, caplog):
    many = pl.concat([FINDINGS.with_columns(pl.lit("warn").alias("severity"))] * 5 + [FINDINGS.head(1)])
    with caplog.at_level("WARNING", logger="assay.alerts"):
        AlertsResource(lake=lake).raise_alerts(many, "monitoring/drift_summary", "run-1")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("[error]") and len(lines) == 6
    assert lines[-1] == "monitoring/drift_summary: 6 more alert(s) in gold/alerts"
    assert lake.scan(*ALERTS_TABLE).collect().height == 11


def test_a_429_is_retried_after_the_pause_the_receiver_asks_for(lake):
    receiver = Receiver(answers=[(429, {"Retry-After": "1"})])
    try:
        alerts = AlertsResource(lake=lake, webhook_url=receiver.url, retries=2, backoff_seconds=0.01)
        result = alerts.raise_alerts(FINDINGS, "monitoring/drift_summary", "run-1")
    finally:
        receiver.close()
    assert result["webhook"] == "sent (HTTP 200, attempt 2)"
    assert receiver.times[1] - receiver.times[0] >= 0.9  # the receiver's pause, not the 0.01 s backoff


def test_a_429_asking_for_a_long_pause_is_not_waited_for(lake):
    receiver = Receiver(answers=[(429, {"Retry-After": "3600"})])
    try:
        result = AlertsResource(lake=lake, webhook_url=receiver.url).raise_alerts(FINDINGS, "x", "run-1")
    finally:
        receiver.close()
    assert result["webhook"] == "failed after 1 attempt(s): HTTP 429 (retry after 3600 s, longer than this run waits)"


def test_a_redirect_is_not_followed(lake):
    elsewhere = Receiver()
    receiver = Receiver(answers=[(307, {"Location": elsewhere.url})])
    try:
        result = AlertsResource(lake=lake, webhook_url=receiver.url).raise_alerts(FINDINGS, "x", "run-1")
    finally:
        receiver.close()
        elsewhere.close()
    assert result["webhook"] == "failed after 1 attempt(s): HTTP 307 (a redirect, not followed)"
    assert elsewhere.bodies == []


@pytest.mark.parametrize("url", ["file:///home/someone/.ssh/id_rsa", "ftp://hooks.example/x", "/tmp/hook"])
def test_only_http_and_https_webhooks_are_used_and_the_refusal_does_not_quote_the_url(lake, url, tmp_path,
                                                                                         monkeypatch):
    from domain.settings import AssaySettings
    from orchestration.definitions import build_definitions

    result = AlertsResource(lake=lake, webhook_url=url).raise_alerts(FINDINGS, "x", "run-1")
    assert result["webhook"].startswith("refused: ASSAY_ALERT_WEBHOOK must be an http or https URL")
    assert url not in result["webhook"]
    monkeypatch.setenv("ASSAY_ALERT_WEBHOOK", url)
    with pytest.raises(ValueError, match="must be an http or https URL") as raised:
        build_definitions(AssaySettings.from_env({"ASSAY_HOME": str(tmp_path)}))  # the code location says so
    assert url not in str(raised.value)


def test_the_webhook_url_is_read_from_the_environment_as_a_secret(tmp_path, monkeypatch):
    from dagster import EnvVar

    from domain.settings import AssaySettings
    from orchestration.definitions import build_definitions

    monkeypatch.setenv("ASSAY_ALERT_WEBHOOK", "https://hooks.example/T000/B000/secret-token")
    alerts = build_definitions(AssaySettings.from_env({"ASSAY_HOME": str(tmp_path)})).resources["alerts"]
    assert isinstance(alerts.webhook_url, EnvVar) and alerts.webhook_url.env_var_name == "ASSAY_ALERT_WEBHOOK"


def test_a_run_resolves_the_webhook_from_the_environment_and_posts_to_it(tmp_path, monkeypatch):
    from dagster import EnvVar, asset, materialize

    receiver = Receiver()
    monkeypatch.setenv("ASSAY_ALERT_WEBHOOK", receiver.url)

    @asset
    def raises_alerts(alerts: AlertsResource) -> None:
        assert alerts.raise_alerts(FINDINGS, "x", "run-1")["webhook"] == "sent (HTTP 200, attempt 1)"

    lake = LakeResource(root=str(tmp_path / "lake"))
    try:
        assert materialize([raises_alerts], resources={
            "alerts": AlertsResource(lake=lake, webhook_url=EnvVar("ASSAY_ALERT_WEBHOOK"))}).success
    finally:
        receiver.close()
    assert len(receiver.bodies) == 1
