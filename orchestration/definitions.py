"""The whole Assay graph in one place: assets, checks, jobs, schedules, sensors and resources."""


import os
import sys
from pathlib import Path

# LightGBM's OpenMP threads busy-wait by default, which starves every other step on a 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dagster import Definitions, EnvVar  # noqa: E402
from dagster_dbt import DbtCliResource  # noqa: E402

from assets.features.dbt import DBT_PROJECT_DIR, build_dbt_assets  # noqa: E402
from assets.features.gold import build_gold_assets  # noqa: E402
from assets.governance.assets import (  # noqa: E402
    dsar_processing,
    retention,
    retention_audience,
    risk_by_segment_report,
)
from assets.ingestion.assets import build_ingestion_assets, landing_specs  # noqa: E402
from assets.modeling.assets import champion, churn_model, lightgbm_params, model_card  # noqa: E402
from assets.monitoring.assets import build_monitoring_assets  # noqa: E402
from assets.partitions import AssayPartitions  # noqa: E402
from assets.scoring.assets import build_customer_scores, threshold_simulation  # noqa: E402
from assets.warehouse.assets import analyst_views  # noqa: E402
from domain.settings import AssaySettings  # noqa: E402
from orchestration.automation import build_automation  # noqa: E402
from resources.alerts import WEBHOOK_ENV, AlertsResource, check_webhook_url  # noqa: E402
from resources.assay import AssayResource  # noqa: E402
from resources.lake import LakeResource  # noqa: E402
from resources.registry import ModelRegistryResource  # noqa: E402


def build_resources(settings: AssaySettings) -> dict:
    lake = LakeResource(root=settings.lake_uri)
    webhook = os.environ.get(WEBHOOK_ENV, "")
    check_webhook_url(webhook)  # a wrong URL fails the code location's load, not an alert months later
    return {
        "assay": AssayResource.from_settings(settings),
        "lake": lake,
        "registry": ModelRegistryResource(models_dir=str(settings.models_dir), lake=lake),
        # as an EnvVar, the UI shows the variable's name, not the URL (a chat tool's webhook URL is its password)
        "alerts": AlertsResource(lake=lake, webhook_url=EnvVar(WEBHOOK_ENV) if webhook else ""),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            # The venv's own launcher (orchestration/dbt_launcher.py): dagster-dbt fails when `dbt` is not on PATH,
            # and asks for the version before every invocation, which the launcher answers without starting dbt.
            dbt_executable=os.environ.get("ASSAY_DBT_EXECUTABLE", str(Path(sys.executable).parent / "assay-dbt")),
        ),
    }


def build_definitions(settings: AssaySettings) -> Definitions:
    partitions = AssayPartitions.from_settings(settings)
    automation = build_automation(partitions, settings.retraining_run_config() if settings.modelling_config else None)
    return Definitions(
        assets=[
            *landing_specs,
            *build_ingestion_assets(partitions),
            *build_dbt_assets(partitions, settings.end_date, settings.feature_snapshots_per_run),
            *build_gold_assets(partitions),
            lightgbm_params,
            churn_model,
            champion,
            model_card,
            build_customer_scores(partitions),
            threshold_simulation,
            retention_audience,
            risk_by_segment_report,
            retention,
            dsar_processing,
            *build_monitoring_assets(partitions),
            analyst_views,
        ],
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=automation.sensors,
        resources=build_resources(settings),
    )


# The code location's entry point: the one place the environment is read.
defs = build_definitions(AssaySettings.from_env())
