"""A lake on an object store (`ASSAY_LAKE_ROOT=s3://...`), through the `assay` CLI against an S3-compatible server
(moto's, in its own process, on loopback): ingestion lands there, and an erasure killed while it purges a table's
old versions finishes on the next run and leaves no object that holds the person."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from lake_traces import rows_by_table, traces
from loopback import free_port

from assets.governance.dsar import requests
from domain.contract import VAULT_TABLE
from domain.faults import FAULT_ENV
from domain.synthetic import config_for_size, generate
from resources.lake import LakeResource

REPO = Path(__file__).resolve().parents[2]
ASSAY = str(REPO / ".venv/bin/assay")
BUCKET = "shop-lake"
START = date(2024, 1, 1)
END = START + timedelta(days=30)



@pytest.fixture(scope="module")
def object_store(tmp_path_factory):
    """An S3-compatible server with an empty bucket; yields the environment that points deltalake, polars and
    pyarrow at it (the standard AWS variables, as a deployment sets them)."""
    port = free_port()
    server = subprocess.Popen([str(REPO / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield env, client
    server.terminate()
    server.wait(timeout=10)


def _env(home: Path, store_env: dict[str, str], fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "AWS_"))}
    env.update(store_env)
    env.update({"ASSAY_HOME": str(home), "ASSAY_LAKE_ROOT": f"s3://{BUCKET}/lake",
                "ASSAY_PSEUDONYM_KEY": "object-store test key, not for production use",
                "ASSAY_LANDING_DIR": str(home / "landing"), "ASSAY_SOURCE": "files",
                "ASSAY_START_DATE": START.isoformat(), "DAGSTER_HOME": str(home / "dagster")})
    if fault:
        env[FAULT_ENV] = fault
    return env


def _download(client, into: Path) -> Path:
    """Every object of the bucket, as files: what the byte scan reads. Not the empty "folder/" markers that pyarrow
    leaves where it deleted a folder's last file (as a local disk keeps the empty folder)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                assert item["Size"] == 0, item["Key"]
                continue
            target = into / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(BUCKET, item["Key"], str(target))
    return into


def test_an_erasure_on_an_object_store_lake_killed_mid_purge_completes_and_leaves_no_trace(
        object_store, tmp_path, monkeypatch):
    store_env, client = object_store
    home = tmp_path / "home"
    generate(config_for_size("tiny", n_customers=150, end=END), home / "landing", home / "ground_truth")
    (home / "dagster").mkdir(parents=True)
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster" / "dagster.yaml")

    def assay(*args: str, fault: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([ASSAY, *args], env=_env(home, store_env, fault), cwd=REPO, capture_output=True,
                              text=True, timeout=600)

    ingested = assay("run", "--steps", "ingestion")
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    for name, value in store_env.items():
        monkeypatch.setenv(name, value)
    lake = LakeResource(root=f"s3://{BUCKET}/lake")
    assert ("bronze", "orders") in lake.tables() and not (home / "lake").exists()

    # someone with orders and events; their devices' anonymous events go too
    events = lake.scan("bronze", "events").collect()
    with_orders = lake.scan("bronze", "orders").select("customer_id").unique().collect().to_series()
    person = (lake.scan(*VAULT_TABLE).collect()
              .filter(pl.col("customer_id").is_in(with_orders.implode())
                      & pl.col("customer_id").is_in(events.get_column("customer_id").implode()))
              .sort("source_customer_id").row(0, named=True))
    devices = events.filter(pl.col("customer_id") == person["customer_id"]).get_column("device_id").drop_nulls()
    needles = [person["source_customer_id"], person["customer_id"], person["email"], *devices.unique().to_list()]
    assert traces(_download(client, tmp_path / "before"), needles)
    before = rows_by_table(lake, person["customer_id"])

    submitted = assay("dsar", "submit", "--customer", person["source_customer_id"], "--kind", "erasure")
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    killed = assay("dsar", "process", fault="lake:log-purged")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-1500:]
    assert requests(lake).get_column("status").to_list() == ["pending"]
    done = assay("dsar", "process")
    assert done.returncode == 0, done.stderr[-2000:]

    assert traces(_download(client, tmp_path / "after"), needles) == []
    assert traces(home, needles) == []
    after = rows_by_table(lake, person["customer_id"], devices.unique().to_list())
    for table, (rows, mine) in before.items():
        if table not in ("governance/dsar_requests", "governance/erasure_tombstones", "gold/audit_log"):
            assert after[table] == (rows - mine, 0), table  # nobody else lost a row
    [request] = requests(lake).to_dicts()
    assert request["status"] == "completed" and request["customer_id"] is None
    erased = json.loads(request["result"])
    assert erased["old_files_deleted"] > 0 and erased["rows_by_table"]["bronze/orders"] > 0
    audit = lake.scan("gold", "audit_log").collect()
    assert audit.height == before["gold/audit_log"][0] + 1  # the erasure's own entry, naming only the request
    assert audit.filter(pl.col("action") == "dsar_erasure").get_column("subject").to_list() == [request["request_id"]]
