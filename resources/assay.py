"""Run-time settings of a deployment, as one Dagster resource (defaults come from environment variables)."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from domain.settings import AssaySettings


class AssayResource(ConfigurableResource):
    """Where things live and the knobs a whole deployment shares."""

    home: str = Field(description="ASSAY_HOME: root of landing, lake, warehouse, models and reports.")
    landing_dir: str = Field(description="Folder with landing/<source>/date=YYYY-MM-DD/ files.")
    source: str = Field(default="synthetic", description="'synthetic' (generated demo data) or 'files'.")
    column_mapping_json: str = Field(default="{}", description="{source: {their_column: contract_column}}.")
    label_horizon_days: int = Field(default=90, description="Churn = no order within this many days.")
    active_window_days: int = Field(default=365, description="Scored population: ordered within this window.")
    cores: int = Field(default=1, ge=1, description="ASSAY_CORES: cores one run may use; Evidently's reports of a "
                                                     "backfill are drawn side by side on them.")
    lgbm_threads: int = Field(default=1, ge=1, description="ASSAY_LGBM_THREADS (default ASSAY_CORES): LightGBM "
                                                            "threads; never more than the cores free.")
    reason_deciles: int = Field(default=10, ge=0, le=10,
                                description="ASSAY_REASON_DECILES: risk deciles 1..n whose scores carry TreeSHAP "
                                            "reasons; the other rows are scored without.")
    profiling_legal_basis: str = Field(
        default="consent", description="ASSAY_PROFILING_LEGAL_BASIS: consent (score only customers with profiling "
                                       "consent), legitimate_interest or contract (score everyone, recorded).")
    landing_encoding: str = Field(default="utf-8", description="ASSAY_LANDING_ENCODING: text encoding of CSV and "
                                                               "JSON landing files, e.g. latin-1.")

    @classmethod
    def from_settings(cls, settings: AssaySettings) -> AssayResource:
        return cls(
            home=str(settings.home),
            landing_dir=str(settings.landing),
            source=settings.source,
            column_mapping_json=json.dumps(settings.column_mapping),
            label_horizon_days=settings.label_horizon_days,
            active_window_days=settings.active_window_days,
            cores=settings.cores,
            lgbm_threads=settings.lgbm_threads,
            reason_deciles=settings.reason_deciles,
            profiling_legal_basis=settings.profiling_legal_basis,
            landing_encoding=settings.landing_encoding,
        )

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir)

    @property
    def models_path(self) -> Path:
        return self.home_path / "models"

    @property
    def reports_path(self) -> Path:
        return self.home_path / "reports"

    @property
    def ground_truth_path(self) -> Path:
        return self.home_path / "ground_truth"

    @property
    def warehouse_path(self) -> Path:
        return self.home_path / "warehouse.duckdb"

    def column_mapping(self, source: str) -> dict[str, str]:
        return json.loads(self.column_mapping_json).get(source, {})
