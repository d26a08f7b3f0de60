"""Deployment settings read from environment variables, in one place.

Only values that shape the asset graph itself (partition bounds, cadence) are read when definitions load;
everything a run may change is a Dagster `Config` or resource field that defaults to these.
"""

from __future__ import annotations

import codecs
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

DEFAULT_START = "2024-01-01"
DEFAULT_END = "2026-01-01"  # exclusive; the synthetic world's default horizon
DEFAULT_SNAPSHOT_START = "2024-07-01"
MODELLING_ASSETS = ("lightgbm_params", "churn_model", "champion")


PROFILING_LEGAL_BASES = ("consent", "legitimate_interest", "contract")


@dataclass(frozen=True)
class AssaySettings:
    home: Path
    source: str = "synthetic"  # "synthetic" or "files"
    landing_dir: Path | None = None
    start_date: date = date.fromisoformat(DEFAULT_START)
    # None: the partitions grow with the calendar, as a deployment's do; a date: a finished history ends there
    end_date: date | None = None
    snapshot_start: date = date.fromisoformat(DEFAULT_SNAPSHOT_START)
    snapshot_cron: str = "0 0 * * 1"  # weekly, Monday 00:00 UTC
    label_horizon_days: int = 90
    active_window_days: int = 365
    column_mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    synthetic_size: str = "demo"
    seed: int = 7
    # Cores one run may use (LightGBM's threads unless ASSAY_LGBM_THREADS says otherwise; Evidently reports side
    # by side). 1 by default: the daemon runs several runs at once. `make demo` runs one at a time and gives 2.
    cores: int = 1
    lgbm_threads: int = 1
    # Risk deciles 1..n whose scores carry TreeSHAP reasons; the rest are scored without (docs/modelling.md)
    reason_deciles: int = 10
    # Snapshots per dbt feature run (CLI steps and UI backfills). Memory does not depend on it (each snapshot is
    # its own pass over the activity table); a smaller chunk shows progress sooner and loses less to a failure.
    feature_snapshots_per_run: int = 52
    lake_root: str | None = None  # a local path or an object-store URI
    # A deployment's own defaults for every retraining run, scheduled, sensor-made or by hand:
    # {"churn_model": {"train_snapshots": 13, ...}, "lightgbm_params": {"n_trials": 20}, "champion": {...}}
    modelling_config: dict[str, dict] = field(default_factory=dict)
    # What profiling (scoring) rests on, in the GDPR's terms: with "consent" only customers with profiling consent
    # are scored; "legitimate_interest" or "contract" score everyone in the population and say so where it counts.
    profiling_legal_basis: str = "consent"
    landing_encoding: str = "utf-8"  # text encoding of CSV and JSON landing files (a UTF-8 byte-order mark is dropped)

    def __post_init__(self) -> None:
        if self.profiling_legal_basis not in PROFILING_LEGAL_BASES:
            raise ValueError(f"ASSAY_PROFILING_LEGAL_BASIS must be one of {list(PROFILING_LEGAL_BASES)}, "
                             f"got {self.profiling_legal_basis!r}")
        if self.cores < 1 or self.lgbm_threads < 1:
            raise ValueError(f"ASSAY_CORES and ASSAY_LGBM_THREADS must be at least 1, got {self.cores} and "
                             f"{self.lgbm_threads}")
        if not 0 <= self.reason_deciles <= 10:
            raise ValueError(f"ASSAY_REASON_DECILES must be between 0 and 10, got {self.reason_deciles}")
        unknown = set(self.modelling_config) - set(MODELLING_ASSETS)
        if unknown:
            raise ValueError(f"ASSAY_MODELLING_CONFIG names unknown assets {sorted(unknown)}; "
                             f"choose from {list(MODELLING_ASSETS)}")
        try:
            codecs.lookup(self.landing_encoding)
        except LookupError:
            raise ValueError(f"ASSAY_LANDING_ENCODING: unknown encoding {self.landing_encoding!r}; "
                             "for example utf-8 or latin-1") from None
        if self.feature_snapshots_per_run < 1:
            raise ValueError("ASSAY_FEATURE_SNAPSHOTS_PER_RUN must be at least 1, "
                             f"got {self.feature_snapshots_per_run}")

    @property
    def landing(self) -> Path:
        return self.landing_dir or self.home / "landing"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def lake_uri(self) -> str:
        return self.lake_root or str(self.lake)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def ground_truth(self) -> Path:
        return self.home / "ground_truth"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AssaySettings:
        env = os.environ if environ is None else environ
        home = Path(env.get("ASSAY_HOME", ".assay")).resolve()
        landing = env.get("ASSAY_LANDING_DIR")
        end = env.get("ASSAY_END_DATE", "")
        return cls(
            home=home,
            source=env.get("ASSAY_SOURCE", "synthetic"),
            landing_dir=Path(landing).resolve() if landing else None,
            start_date=date.fromisoformat(env.get("ASSAY_START_DATE", DEFAULT_START)),
            end_date=date.fromisoformat(end) if end else None,
            snapshot_start=date.fromisoformat(env.get("ASSAY_SNAPSHOT_START", DEFAULT_SNAPSHOT_START)),
            snapshot_cron=env.get("ASSAY_SNAPSHOT_CRON", "0 0 * * 1"),
            label_horizon_days=int(env.get("ASSAY_LABEL_HORIZON_DAYS", "90")),
            active_window_days=int(env.get("ASSAY_ACTIVE_WINDOW_DAYS", "365")),
            column_mapping=load_column_mapping(env.get("ASSAY_COLUMN_MAPPING", "")),
            synthetic_size=env.get("ASSAY_SIZE", "demo"),
            seed=int(env.get("ASSAY_SEED", "7")),
            cores=int(env.get("ASSAY_CORES", "1")),
            lgbm_threads=int(env.get("ASSAY_LGBM_THREADS") or env.get("ASSAY_CORES") or "1"),
            reason_deciles=int(env.get("ASSAY_REASON_DECILES", "10")),
            feature_snapshots_per_run=int(env.get("ASSAY_FEATURE_SNAPSHOTS_PER_RUN", "52")),
            lake_root=env.get("ASSAY_LAKE_ROOT") or None,
            modelling_config=load_json_setting(env.get("ASSAY_MODELLING_CONFIG", ""), "ASSAY_MODELLING_CONFIG"),
            profiling_legal_basis=env.get("ASSAY_PROFILING_LEGAL_BASIS", "consent"),
            landing_encoding=env.get("ASSAY_LANDING_ENCODING", "utf-8"),
        )

    def retraining_run_config(self) -> dict:
        """Run config of the modelling assets from `modelling_config` (a run's own config is laid over it)."""
        return {"ops": {f"models__{name}": {"config": config} for name, config in self.modelling_config.items()}}


def load_json_setting(value: str, name: str) -> dict[str, dict]:
    """A setting of shape {name: {...}}: inline JSON or a path to a JSON file; empty: {}."""
    if not value.strip():
        return {}
    text = Path(value).read_text() if not value.lstrip().startswith("{") else value
    loaded = json.loads(text)
    if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
        raise ValueError(f"{name} must map names to JSON objects")
    return loaded


def load_column_mapping(value: str) -> dict[str, dict[str, str]]:
    """Parse `ASSAY_COLUMN_MAPPING`: inline JSON or a path to a JSON file.

    Shape: {"orders": {"their_column": "contract_column", ...}, ...}.
    """
    try:
        return load_json_setting(value, "ASSAY_COLUMN_MAPPING")
    except ValueError as error:
        raise ValueError("ASSAY_COLUMN_MAPPING must map source name -> {their_column: contract_column}") from error
