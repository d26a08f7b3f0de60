"""The whole Assay graph in one place: assets, checks, jobs, schedules, sensors and resources."""


import os
import sys
from pathlib import Path

# LightGBM's OpenMP threads busy-wait by default, which starves every other step on a 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dagster import Definitions  # noqa: E402
from dagster_dbt import DbtCliResource  # noqa: E402

from assets.features.dbt import DBT_PROJECT_DIR, build_dbt_feature_assets  # noqa: E402
from assets.features.gold import gold_churn_labels, gold_customer_features  # noqa: E402
from assets.governance.assets import (  # noqa: E402
    dsar_processing,
    retention,
    retention_audience,
    risk_by_segment_report,
)
from assets.ingestion.assets import ingestion_assets, landing_specs  # noqa: E402
from assets.modeling.assets import champion, churn_model, lightgbm_params, model_card  # noqa: E402
from assets.monitoring.assets import drift_summary, model_performance, source_drift  # noqa: E402
from assets.scoring.assets import customer_scores, threshold_simulation  # noqa: E402
from assets.warehouse.assets import analyst_views  # noqa: E402
from domain.settings import AssaySettings  # noqa: E402
from orchestration.automation import (  # noqa: E402
    daily_ingestion_schedule,
    dsar_job,
    dsar_sensor,
    ingestion_job,
    landing_sensor,
    monthly_retraining_schedule,
    rescore_after_promotion,
    rescoring_job,
    retention_job,
    retention_schedule,
    retraining_job,
    retraining_sensor,
    weekly_snapshot_job,
    weekly_snapshot_schedule,
)
from resources.alerts import AlertsResource  # noqa: E402
from resources.assay import AssayResource  # noqa: E402
from resources.lake import LakeResource  # noqa: E402
from resources.registry import ModelRegistryResource  # noqa: E402


def build_resources(settings: AssaySettings) -> dict:
    lake = LakeResource(root=settings.lake_uri)
    return {
        "assay": AssayResource.from_settings(settings),
        "lake": lake,
        "registry": ModelRegistryResource(models_dir=str(settings.models_dir), lake=lake),
        "alerts": AlertsResource(lake=lake, webhook_url=os.environ.get("ASSAY_ALERT_WEBHOOK", "")),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            # dagster-dbt fails when `dbt` is not on PATH; the venv's own executable is always there.
            dbt_executable=os.environ.get("ASSAY_DBT_EXECUTABLE", str(Path(sys.executable).parent / "dbt")),
        ),
    }


def build_definitions(settings: AssaySettings) -> Definitions:
    return Definitions(
        assets=[
            *landing_specs,
            *ingestion_assets,
            build_dbt_feature_assets(settings.end_date, settings.feature_snapshots_per_run),
            gold_customer_features,
            gold_churn_labels,
            lightgbm_params,
            churn_model,
            champion,
            model_card,
            customer_scores,
            threshold_simulation,
            retention_audience,
            risk_by_segment_report,
            retention,
            dsar_processing,
            drift_summary,
            model_performance,
            source_drift,
            analyst_views,
        ],
        jobs=[ingestion_job, weekly_snapshot_job, retraining_job, rescoring_job, retention_job, dsar_job],
        schedules=[daily_ingestion_schedule, weekly_snapshot_schedule, monthly_retraining_schedule,
                   retention_schedule],
        sensors=[landing_sensor, dsar_sensor, retraining_sensor, rescore_after_promotion],
        resources=build_resources(settings),
    )


defs = build_definitions(AssaySettings.from_env())
