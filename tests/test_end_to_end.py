"""The whole graph, backfilled in-process on a small synthetic dataset into a temporary ASSAY_HOME: the steps and
jobs `assay run` uses (orchestration/backfill.py), read back from the Dagster instance."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import polars as pl
import pytest
from dagster import AssetKey, AssetSelection, DagsterEventType, DagsterInstance, RunsFilter, materialize
from dagster_ui import chromium_page, running_ui
from playwright.sync_api import expect

from assets.partitions import AssayPartitions
from domain.settings import AssaySettings
from domain.synthetic import config_for_size, generate
from orchestration.backfill import DEFAULT_STEPS, Step, backfill_steps, data_end, run_backfill
from orchestration.definitions import build_definitions

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


class StepRuns:
    """The runs one backfill step made, read back from the instance: what `materialize` returned for it before."""

    def __init__(self, instance, step: str) -> None:
        runs = instance.get_runs(filters=RunsFilter(tags={"assay/reason": f"backfill-{step}"}))
        assert runs, f"the backfill made no run for {step}"
        self.events = [event for run in reversed(runs) for event in instance.all_logs(run.run_id)]

    def _of_type(self, event_type: DagsterEventType) -> list:
        return [e for e in self.events if e.dagster_event is not None and e.dagster_event.event_type == event_type]

    def asset_materializations_for_node(self, node: str) -> list:
        return [e.asset_materialization for e in self._of_type(DagsterEventType.ASSET_MATERIALIZATION)
                if e.dagster_event.step_key == node]

    def get_asset_check_evaluations(self) -> list:
        return [e.dagster_event.event_specific_data for e in self._of_type(DagsterEventType.ASSET_CHECK_EVALUATION)]


class Pipeline(NamedTuple):
    settings: AssaySettings
    summary: object  # the generator's summary: rows landed per source
    results: dict[str, StepRuns]
    snapshots: list[str]
    steps: dict[str, Step]
    end: date  # exclusive end of what landed


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    home = tmp_path_factory.mktemp("assay_home")
    settings = AssaySettings.from_env({"ASSAY_HOME": str(home)})
    summary = generate(config_for_size("small"), settings.landing, settings.ground_truth)
    end = data_end(settings.landing, settings.end_date)
    steps = backfill_steps(AssayPartitions.from_settings(settings), end, drift_snapshots=2,
                           snapshots_per_run=settings.feature_snapshots_per_run)
    names = [name for name in DEFAULT_STEPS if name in steps]  # what `assay run` runs
    # A small tuning budget keeps the suite fast; the search itself is tested in tests/modeling/test_tuning.py.
    # At this size an age band holds ~1k validation rows, too few for the default fairness limits to separate
    # chance from bias (the generator's churn does not depend on age); the limits are tested in test_gate.py.
    run_config = {
        "tuning": {"ops": {"models__lightgbm_params": {"config": {"n_trials": 3, "timeout_seconds": 20}}}},
        "model": {"ops": {"models__churn_model": {"config": {"max_equal_opportunity_difference": 0.5,
                                                             "min_selection_rate_ratio": 0.2}}}},
    }
    # the instance a user's home has (what `make demo` writes): the UI test at the end opens this home
    (home / "dagster").mkdir()
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster" / "dagster.yaml")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home / "dagster"))
        with DagsterInstance.get() as instance:
            run_backfill(build_definitions(settings), instance, steps, names, run_config, say=lambda _: None)
            results = {name: StepRuns(instance, name) for name in names if steps[name].keys != []}
            yield Pipeline(settings, summary, results, steps["features"].keys, steps, end)


def test_every_landing_row_is_in_bronze_or_quarantine(pipeline):
    settings, summary, _, _, _, _ = pipeline
    for source, rows in summary.rows.items():
        bronze = pl.read_delta(str(settings.lake / "bronze" / source))
        quarantine = pl.read_delta(str(settings.lake / "quarantine" / source))
        rejected = quarantine.filter(pl.col("disposition") == "rejected").height
        assert bronze.height + rejected == rows, source
    # a malformed email costs the email, not the customer: each is in bronze and noted in the quarantine
    customers = pl.read_delta(str(settings.lake / "quarantine" / "customers"))
    nulled = customers.filter(pl.col("disposition") == "value_nulled")
    assert nulled.height > 0 and set(nulled["reason"]) == {"nulled_invalid:email"}
    kept = pl.read_delta(str(settings.lake / "bronze" / "customers"))
    assert nulled["customer_id"].is_in(kept["customer_id"].implode()).all()


def test_gold_tables_cover_every_snapshot_and_labels_only_matured_ones(pipeline):
    settings, _, results, snapshots, steps, end = pipeline
    features = pl.read_delta(str(settings.lake / "gold" / "customer_features"))
    labels = pl.read_delta(str(settings.lake / "gold" / "churn_labels"))
    scores = pl.read_delta(str(settings.lake / "gold" / "customer_scores"))
    assert features.get_column("snapshot_date").n_unique() == len(snapshots)
    assert features.select("customer_id", "snapshot_date").is_duplicated().sum() == 0
    # Every feature row is scored or held back for lack of profiling consent, and the metadata says how many.
    meta = results["scores"].asset_materializations_for_node("gold__customer_scores")[0].metadata
    assert meta["customers_in"].value == features.height
    assert scores.height == meta["dagster/row_count"].value
    assert scores.height + meta["excluded_without_profiling_consent"].value == features.height
    assert 0 < meta["excluded_without_profiling_consent"].value < 0.2 * features.height
    unconsented = features.filter(~pl.col("consent_profiling").fill_null(False)).select("customer_id", "snapshot_date")
    assert scores.join(unconsented, on=["customer_id", "snapshot_date"]).height == 0
    newest_label = labels.get_column("snapshot_date").max()
    assert newest_label is not None and newest_label.isoformat() < snapshots[-1]
    assert 0.1 < labels.get_column("churned").mean() < 0.6
    # labels exactly for the snapshots whose horizon has landed, each over that snapshot's feature population
    labelled = sorted(labels.get_column("snapshot_date").unique().cast(pl.Utf8).to_list())
    assert labelled == steps["labels"].keys and len(labelled) < len(snapshots)
    assert all(date.fromisoformat(k) + timedelta(days=settings.label_horizon_days) <= end for k in labelled)
    population = features.filter(pl.col("snapshot_date").cast(pl.Utf8).is_in(labelled))
    keys = ["customer_id", "snapshot_date"]
    assert labels.select(keys).sort(keys).equals(population.select(keys).sort(keys))


def test_model_is_registered_with_lineage_and_oracle_comparison(pipeline):
    settings, _, results, _, _, _ = pipeline
    meta = results["model"].asset_materializations_for_node("models__churn_model")[0].metadata
    assert meta["oot_auc"].value > 0.7
    assert 0.5 < meta["oot_oracle_auc"].value <= 1.0
    assert set(meta["training_inputs"].value) == {"gold/customer_features", "gold/churn_labels", "bronze/customers",
                                                  "gold/tuning_results"}
    version = meta["model_version"].value
    card = json.loads((settings.models_dir / version / "model.json").read_text())
    assert "gender" not in card["features"] and "recency_days" in card["features"]
    assert set(card["split"]) == {"train", "early_stopping", "calibration", "validation"}
    evaluation = json.loads((settings.models_dir / version / "evaluation.json").read_text())
    assert {"lightgbm_calibrated", "logistic_regression", "rfm_heuristic", "bgnbd"} <= set(evaluation["metrics"])
    assert {"gender", "age_band"} <= set(evaluation["fairness"]["summary"])
    # the drift reference keeps only customers who may be profiled, in a private file
    reference_file = settings.models_dir / version / "reference.parquet"
    reference = pl.read_parquet(reference_file)
    assert reference.height == meta["drift_reference_rows"].value > 0
    assert meta["drift_reference_excluded_without_profiling_consent"].value > 0
    assert reference.get_column("consent_profiling").all() and reference_file.stat().st_mode & 0o777 == 0o600
    # The first model that passes the limits becomes champion; its card and plots are written.
    gate = results["model"].asset_materializations_for_node("models__champion")[0].metadata
    assert gate["decision"].value == "promoted" and gate["challenger_version"].value == version
    reports = settings.reports_dir / "models" / version
    assert {"roc.png", "reliability.png", "gains.png", "model_card.md", "model_card.html"} <= {
        p.name for p in reports.iterdir()}


def test_drift_reports_and_analyst_views(pipeline):
    settings, _, results, snapshots, _, _ = pipeline
    assert sorted(p.stem for p in (settings.reports_dir / "drift").glob("*.html")) == snapshots[-2:]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    for view in ("customer_features", "churn_labels", "customer_scores", "drift_summary", "model_registry",
                 "model_decisions", "tuning_trials", "threshold_simulation", "risk_by_segment", "audit_log",
                 "monitoring_metrics"):
        assert con.sql(f"select count(*) from {view}").fetchone()[0] > 0, view
    top = con.sql("select max(p_churn) from customer_scores where decile = 1").fetchone()[0]
    assert 0 < top <= 1
    # The newest snapshot's scores carry reasons; threshold economics read the same snapshot.
    missing = con.sql("select count(*) from customer_scores where snapshot_date = (select max(snapshot_date) "
                      "from customer_scores) and reason_1_feature is null").fetchone()[0]
    assert missing == 0
    con.close()


def test_the_readme_analyst_queries_run_in_the_duckdb_shell(pipeline):
    """`make sql`'s shell (the pinned duckdb-cli, read-only, delta loaded) answers each query the README shows."""
    settings = pipeline[0]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```sql", 1)[1].split("```", 1)[0]
    queries = [q.strip() for q in block.split(";") if q.strip()]
    assert len(queries) == 3
    shell = Path(sys.executable).with_name("duckdb")
    for query in queries:
        out = subprocess.run([str(shell), "-readonly", "-cmd", "LOAD delta", "-csv", str(settings.warehouse_path),
                              "-c", query], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and not out.stderr, out.stderr
        assert len(out.stdout.strip().splitlines()) > 1, query  # a header and at least one row


def test_the_drift_report_does_not_alarm_on_unscored_customers_or_on_ages(pipeline):
    settings, _, _, snapshots, _, _ = pipeline
    metrics = pl.read_delta(str(settings.lake / "gold" / "monitoring_metrics")).filter(pl.col("source") == "drift")
    scores = pl.read_delta(str(settings.lake / "gold" / "customer_scores")).filter(
        pl.col("snapshot_date").cast(pl.Utf8) == snapshots[-1])
    features = pl.read_delta(str(settings.lake / "gold" / "customer_features")).filter(
        pl.col("snapshot_date").cast(pl.Utf8) == snapshots[-1])
    assert scores.height < features.height  # customers without profiling consent are not scored
    newest = metrics.filter(pl.col("snapshot_date").cast(pl.Utf8) == snapshots[-1])
    p_churn = {m: v for m, c, v in newest.select("metric", "column", "value").iter_rows() if c == "p_churn"}
    # on the consent basis both sides hold only customers who may be profiled: all of them scored
    assert p_churn["missing_share"] < 0.005 and abs(p_churn["missing_share_increase"]) < 0.005
    assert newest.filter((pl.col("column") == "first_order_age_days") & (pl.col("metric") == "psi")).height == 1
    alerts = pl.read_delta(str(settings.lake / "gold" / "alerts")).filter(
        pl.col("source") == "monitoring/drift_summary")
    assert alerts.filter(pl.col("column").is_in(["first_order_age_days", "tenure_days"])).height == 0
    assert alerts.filter((pl.col("column") == "p_churn") & (pl.col("metric") == "missing_share_increase")).height == 0


def test_monitoring_metrics_cover_drift_of_new_snapshots_and_performance_of_matured_ones(pipeline):
    settings, _, results, snapshots, _, _ = pipeline
    metrics = pl.read_delta(str(settings.lake / "gold" / "monitoring_metrics"))
    labels = pl.read_delta(str(settings.lake / "gold" / "churn_labels"))
    drift = metrics.filter(pl.col("source") == "drift")
    assert sorted(drift.get_column("snapshot_date").cast(pl.Utf8).unique()) == snapshots[-2:]
    assert {"psi", "missing_share_increase", "mean_shift", "drift_share"} <= set(drift.get_column("metric"))
    auc = metrics.filter((pl.col("source") == "performance") & (pl.col("metric") == "auc"))
    # every matured snapshot has a performance row, and the model still separates churners out of time
    assert auc.height == labels.get_column("snapshot_date").n_unique()
    assert auc.get_column("value").min() > 0.7
    meta = results["performance"].asset_materializations_for_node("monitoring__model_performance")[0].metadata
    assert meta["matured_snapshots"].value == auc.height
    from evidently.ui.workspace import Workspace

    from assets.monitoring.drift import WORKSPACE_PROJECT, sync_workspace

    assert sync_workspace(settings.reports_dir / "evidently_workspace", settings.reports_dir / "drift") == 2
    ws = Workspace.create(str(settings.reports_dir / "evidently_workspace"))
    [project] = ws.search_project(WORKSPACE_PROJECT)
    assert sorted(ws.get_run(project.id, r).name for r in ws.list_runs(project.id)) == snapshots[-2:]
    checks = {c.check_name for c in results["drift"].get_asset_check_evaluations()}
    assert checks == {"drift_share_below_threshold", "psi_below_threshold", "missing_share_stable",
                      "prediction_shift_below_threshold"}


def _vault(settings) -> pl.DataFrame:
    return pl.read_delta(str(settings.lake / "restricted" / "pii_vault"))


def test_no_analyst_view_returns_an_email_phone_or_card_number(pipeline):
    """Analysts read views only; every text value of every view is scanned with the ingestion PII patterns, and
    for the customers' own ids and names (views hold tokens only)."""
    from assets.ingestion.pii_scan import PII_PATTERNS

    settings, _, _, _, _, _ = pipeline
    vault = _vault(settings)
    clear_values = pl.concat([vault.get_column(c).drop_nulls() for c in ("source_customer_id", "full_name")])
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    text_columns = con.sql("select table_name, column_name from information_schema.columns "
                           "where table_schema = 'main' and data_type = 'VARCHAR'").fetchall()
    con.register("clear_values", pl.DataFrame({"clear_value": clear_values.unique()}).to_arrow())
    assert {t for t, _ in text_columns} >= {"customer_features", "customer_scores", "audit_log"}
    found = {}
    for table, column in text_columns:
        for kind, pattern in PII_PATTERNS.items():
            hits = con.execute(f'select count(*) from main."{table}" where regexp_matches("{column}", ?)',
                               [pattern]).fetchone()[0]
            if hits:
                found[f"{table}.{column}:{kind}"] = hits
        hits = con.execute(f'select count(*) from main."{table}" join clear_values on "{column}" = clear_value'
                           ).fetchone()[0]
        if hits:
            found[f"{table}.{column}:clear_id_or_name"] = hits
    con.close()
    assert vault.height > 0 and found == {}


def test_withdrawn_consent_removes_the_customer_from_the_next_scores_and_export(pipeline):
    """Runs last: it lands two withdrawals on the last day and re-runs ingestion, scores and export."""
    settings, _, results, snapshots, _, _ = pipeline
    newest = snapshots[-1]
    audience_before = pl.read_delta(str(settings.lake / "gold" / "audience_exports"))
    scores_before = pl.read_delta(str(settings.lake / "gold" / "customer_scores")).filter(
        pl.col("snapshot_date").cast(pl.Utf8) == newest)
    leaves_marketing = audience_before.item(0, "customer_id")
    leaves_profiling = scores_before.filter(pl.col("customer_id") != leaves_marketing).item(0, "customer_id")
    # the lake knows them by token; their consent events arrive under their own ids
    own_ids = dict(_vault(settings).select("customer_id", "source_customer_id").iter_rows())
    last_day = pipeline.steps["ingestion"].keys[-1]
    folder = settings.landing / "consents" / f"date={last_day}"
    folder.mkdir(parents=True, exist_ok=True)
    when = datetime.fromisoformat(f"{last_day}T12:00:00+00:00")
    pl.DataFrame({
        "consent_id": ["CNW1", "CNW2"], "customer_id": [own_ids[leaves_marketing], own_ids[leaves_profiling]],
        "purpose": ["marketing", "profiling"], "granted": [False, False], "event_ts": [when, when],
    }, schema={"consent_id": pl.Utf8, "customer_id": pl.Utf8, "purpose": pl.Utf8, "granted": pl.Boolean,
               "event_ts": pl.Datetime("us", "UTC")}).write_parquet(folder / "part-withdrawals.parquet")

    defs = build_definitions(settings)
    assets, resources = list(defs.assets), defs.resources
    plan = [
        (AssetSelection.assets(AssetKey(["bronze", "consents"])).required_multi_asset_neighbors(), last_day),
        (AssetSelection.assets(AssetKey(["gold", "customer_scores"])), newest),
        (AssetSelection.assets(AssetKey(["exports", "retention_audience"])), None),
    ]
    with DagsterInstance.ephemeral() as instance:
        for selection, partition in plan:
            result = materialize(assets, selection=selection, resources=resources, instance=instance,
                                 partition_key=partition)
            assert result.success
    scores_after = pl.read_delta(str(settings.lake / "gold" / "customer_scores")).filter(
        pl.col("snapshot_date").cast(pl.Utf8) == newest)
    assert leaves_profiling not in scores_after.get_column("customer_id").to_list()
    assert scores_after.height == scores_before.height - 1  # nobody else lost or duplicated
    audience_after = pl.read_delta(str(settings.lake / "gold" / "audience_exports"))
    assert leaves_marketing not in audience_after.get_column("customer_id").to_list()
    hand_off = pl.read_csv(settings.home / "exports" / f"retention_audience_{newest}.csv")
    assert leaves_marketing not in hand_off.get_column("customer_id").to_list()
    # the hand-off file resolves every token to the customer's own id
    assert hand_off.height == audience_after.height and hand_off.get_column("source_customer_id").null_count() == 0
    assert dict(hand_off.select("customer_id", "source_customer_id").iter_rows()).items() <= own_ids.items()
    assert audience_after.get_column("snapshot_date").n_unique() == 1  # replaced, not appended
    audit = pl.read_delta(str(settings.lake / "gold" / "audit_log"))
    assert {"score", "export", "report"} <= set(audit.get_column("action"))
    assert audit.filter(pl.col("action") == "export").height == 2


def test_erasure_through_the_graph_leaves_the_warehouse_usable_and_traceless(pipeline):
    """Runs last: an erasure request processed by the dsar asset over every table the whole graph wrote."""
    from assets.governance.dsar import REQUESTS_TABLE, new_request
    from resources.lake import LakeResource

    settings, _, results, snapshots, _, _ = pipeline
    lake = LakeResource(root=str(settings.lake))
    scores = pl.read_delta(str(settings.lake / "gold" / "customer_scores"))
    customer_id = scores.filter(pl.col("snapshot_date").cast(pl.Utf8) == snapshots[-1]).item(0, "customer_id")
    person = _vault(settings).filter(pl.col("customer_id") == customer_id)
    own_id = person.item(0, "source_customer_id")
    needles = [customer_id, own_id, *person.get_column("email").drop_nulls().to_list()]
    features_before = pl.read_delta(str(settings.lake / "gold" / "customer_features"))
    lake.append(*REQUESTS_TABLE, new_request(own_id, "erasure"))

    defs = build_definitions(settings)
    result = materialize(list(defs.assets), selection=AssetSelection.groups("dsar"), resources=defs.resources)
    assert result.success
    meta = result.asset_materializations_for_node("governance__dsar_processing")[0].metadata
    assert meta["processed"].value == 1 and meta["still_pending"].value == 0
    # Dagster's run logs are not rewritten by an erasure: every event of every run of the graph, and of the
    # erasure's own run, must never have held the person (metadata and messages carry counts, versions and paths)
    logged = [repr(e) for step in results.values() for e in step.events] + [repr(e) for e in result.all_events]
    assert len(logged) > 1000 and not [line for line in logged if any(n in line for n in needles)]

    pattern = "|".join(needles)
    for root in (settings.lake, settings.landing):
        for path in root.rglob("*.parquet"):
            frame = pl.read_parquet(path)
            if "_delta_log" in path.parts:  # a checkpoint: file statistics quote column values
                assert not any(n in str(frame.to_dicts()) for n in needles), path
                continue
            text = frame.select(pl.concat_str(pl.all().cast(pl.Utf8), ignore_nulls=True)).to_series()
            assert not text.str.contains(pattern).any(), path
        for path in root.rglob("*.json"):
            assert not any(n in path.read_text() for n in needles), path
    features_after = pl.read_delta(str(settings.lake / "gold" / "customer_features"))
    mine = features_before.filter(pl.col("customer_id") == customer_id).height
    assert mine > 0 and features_after.height == features_before.height - mine
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    assert con.sql("select count(*) from customer_scores where customer_id = ?",
                   params=[customer_id]).fetchone()[0] == 0
    assert con.sql("select count(*) from staging.stg_customers where customer_id = ?",
                   params=[customer_id]).fetchone()[0] == 0
    assert con.sql("select count(*) from customer_features").fetchone()[0] == features_after.height
    con.close()


def _markdown_images(page, metadata_key: str) -> list[str]:
    """Open an asset's Markdown metadata entry in the UI; the alt text of each image in it that the browser drew."""
    row = page.locator("tr").filter(has=page.locator("td", has_text=re.compile(rf"^{metadata_key}$")))
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    images = dialog.locator("img")
    expect(images.first).to_be_visible()
    drawn = [i.get_attribute("alt") for i in images.all() if i.evaluate("i => i.complete && i.naturalWidth > 0")]
    images.first.scroll_into_view_if_needed()  # for the screenshot
    return drawn


def test_the_ui_in_a_real_browser(pipeline, tmp_path):
    """`make ui` on this home, looked at in Debian's Chromium as a data engineer would: every group in the asset
    graph, a partition launched from the UI that succeeds, the asset checks and their results, and the model's plots
    and card opened from its metadata. Screenshots go to $ASSAY_UI_SCREENSHOTS (`make screenshots`), else tmp_path."""
    settings = pipeline.settings
    graph = build_definitions(settings).resolve_asset_graph()
    groups = sorted({node.group_name for node in graph.asset_nodes})
    shots = Path(os.environ.get("ASSAY_UI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    day = (pipeline.end - timedelta(days=1)).isoformat()  # the newest landed day, already ingested
    bronze_before = pl.read_delta(str(settings.lake / "bronze" / "orders")).height

    with running_ui(settings.home, tmp_path / "ui.log") as ui, chromium_page(scale=2) as page:
        page.goto(f"{ui}/asset-groups")
        for group in groups:  # a node of the graph (drawn in an SVG), each group folded
            expect(page.locator("svg").get_by_text(group, exact=True)).to_be_visible()
        jump = page.get_by_placeholder(re.compile("^Jump to")).bounding_box()
        page.mouse.click(jump["x"] + jump["width"] + 22, jump["y"] + jump["height"] / 2)  # fold the side bar
        page.wait_for_timeout(1_000)  # the graph re-centres
        nodes = [page.locator("svg").get_by_text(group, exact=True).bounding_box() for group in groups]
        left, top = min(n["x"] for n in nodes) - 24, min(n["y"] for n in nodes) - 24
        page.screenshot(path=shots / "asset-graph.png", clip={
            "x": left, "y": top, "width": max(n["x"] + n["width"] for n in nodes) + 24 - left,
            "height": max(n["y"] + n["height"] for n in nodes) + 24 - top})

        # a day of orders again, launched as a user would: it replaces that day's partition
        page.goto(f"{ui}/assets/bronze/orders")
        page.get_by_role("button").filter(has_text=re.compile(r"^Materialize…$")).click()
        page.get_by_role("button", name="Confirm").click()  # the ingestion multi-asset also writes its quarantine
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Show all partitions").click()
        partitions = dialog.locator("input[type=text]").first  # the partition selection, as text
        partitions.fill(day)
        partitions.press("Enter")
        dialog.get_by_role("button", name="Launch 1 run").click()
        page.get_by_text("View", exact=True).click()
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=240_000)
        page.screenshot(path=shots / "run.png")

        page.goto(f"{ui}/assets/bronze/orders?view=checks")
        checks = sorted(k.name for k in graph.asset_check_keys if k.asset_key == AssetKey(["bronze", "orders"]))
        assert checks
        for check in checks:
            expect(page.get_by_text(check, exact=True).first).to_be_visible()
        expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
        page.screenshot(path=shots / "checks.png")

        page.goto(f"{ui}/assets/models/churn_model")
        assert _markdown_images(page, "plots") == ["ROC curve", "Reliability", "Cumulative gains"]
        page.screenshot(path=shots / "model-plots.png")
        page.goto(f"{ui}/assets/reports/model_card")
        assert {"ROC curve", "Reliability plot"} <= set(_markdown_images(page, "card"))
        expect(page.get_by_role("dialog").get_by_text(re.compile("^Model card: churn model"))).to_have_count(1)
        page.screenshot(path=shots / "model-card.png")

    instance = DagsterInstance.get()  # the home's (DAGSTER_HOME, set by the fixture)
    [run] = [r for r in instance.get_runs(filters=RunsFilter(tags={"dagster/partition": day}))
             if "assay/reason" not in r.tags]  # the UI's run, not the backfill's
    assert run.status.value == "SUCCESS"
    evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(
        run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert sorted(e.check_name for e in evaluations if e.passed) == checks  # what the page showed as passed
    assert pl.read_delta(str(settings.lake / "bronze" / "orders")).height == bronze_before  # idempotent per day
