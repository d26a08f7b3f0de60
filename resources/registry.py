"""Model registry: artifacts under `models/<version>/`, one row per version in the Delta table gold/model_registry.

Statuses: `challenger` (trained, waiting for the gate), `champion` (exactly one; scoring uses it), `archived`
(a former champion, or a challenger the gate refused). Every status change is appended to gold/model_decisions
with who or what made it, so the registry's history can be audited and any version can be rolled back to.

The registry stores and hands back artifacts (a version's folder and its JSON card); it knows no model class.
A model registers itself through `ModelArtifacts.save`, and the modelling stage rebuilds its pipeline from what
`load` returns (assets/modeling/pipeline.py), so resources never import assets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from domain.private_files import write_private
from resources.audit import record
from resources.lake import LakeResource

REGISTRY_TABLE = ("gold", "model_registry")
DECISIONS_TABLE = ("gold", "model_decisions")
MODEL_FILE = "model.txt"  # the model's own file inside a version's folder; promote refuses a version without it
# why scoring and monitoring are skipped before the first promotion (asset metadata, logs, the run summary)
NO_CHAMPION = "no model has passed the gate yet: see gold/model_decisions"


class ModelArtifacts(Protocol):
    """What the registry needs of a model: its feature list, and a way to write itself to disk."""

    features: list[str]

    def save(self, model_file: Path) -> dict:
        """Write the model to `model_file`; return the card fields that rebuild it from that file."""
        ...


@dataclass(frozen=True)
class LoadedModel:
    """A registered version as stored: its folder and card. The modelling stage turns it into a pipeline."""

    version: str
    card: dict
    path: Path

    @property
    def features(self) -> list[str]:
        return self.card["features"]

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def reference_path(self) -> Path:
        return self.path / "reference.parquet"

    @property
    def evaluation(self) -> dict:
        path = self.path / "evaluation.json"
        return json.loads(path.read_text()) if path.exists() else {}


class ModelRegistryResource(ConfigurableResource):
    models_dir: str = Field(description="Folder holding one sub-folder of artifacts per model version.")
    lake: LakeResource

    def register(self, version: str, model: ModelArtifacts, card: dict, evaluation: dict,
                 reference: pl.DataFrame) -> Path:
        """Write a challenger's artifacts and its registry row; the gate decides its status later."""
        path = Path(self.models_dir) / version
        path.mkdir(parents=True, exist_ok=True)
        card = {**card, **model.save(path / MODEL_FILE), "version": version, "features": model.features}
        (path / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
        (path / "evaluation.json").write_text(json.dumps(evaluation, indent=2, sort_keys=True, default=str))
        # validation rows with customer ids: private, like every file of personal data Assay writes
        write_private(path / "reference.parquet", reference.write_parquet)
        row = pl.DataFrame(
            {
                "version": [version],
                "created_at": [datetime.now(UTC)],
                "status": ["challenger"],
                "promoted_by": [""],
                "promoted_at": [None],
                "path": [str(path)],
                "trainer_code_version": [card.get("trainer_code_version", "")],
                "dbt_manifest_hash": [card.get("dbt_manifest_hash", "")],
                "features": [json.dumps(card["features"])],
                "params": [json.dumps(card["params"], sort_keys=True)],
                "training_window": [json.dumps(card["split"], sort_keys=True)],
                "train_snapshots": [json.dumps(card["split"]["train"])],
                "validation_snapshots": [json.dumps(card["split"]["validation"])],
                "training_inputs": [json.dumps(card["training_inputs"], sort_keys=True)],
                "metrics": [json.dumps(card["validation_metrics"], sort_keys=True)],
            },
            schema_overrides={"promoted_at": pl.Datetime("us", "UTC")},
        )
        self.lake.append(*REGISTRY_TABLE, row)
        return path

    def rows(self) -> pl.DataFrame:
        if not self.lake.exists(*REGISTRY_TABLE):
            return pl.DataFrame()
        return self.lake.scan(*REGISTRY_TABLE).sort("created_at").collect()

    def champion_version(self) -> str | None:
        rows = self.rows()
        if rows.height == 0:
            return None
        champions = rows.filter(pl.col("status") == "champion")
        if champions.height > 1:
            raise LookupError(f"expected one champion in the registry, found {champions.height}")
        return champions.item(0, "version") if champions.height else None

    def require_champion(self) -> str:
        version = self.champion_version()
        if version is None:
            raise LookupError("no champion in the registry: materialize models/churn_model and models/champion")
        return version

    def _log(self, version: str, action: str, actor: str, details: dict) -> None:
        self.lake.append(*DECISIONS_TABLE, pl.DataFrame({
            "decided_at": [datetime.now(UTC)], "version": [version], "action": [action], "actor": [actor],
            "details": [json.dumps(details, sort_keys=True, default=str)],
        }))
        # the audit log has no run id for a CLI rollback; the actor names who or what decided
        record(self.lake, f"model_{action}", f"models/{version}", actor, 0, {"actor": actor})

    def promote(self, version: str, promoted_by: str, details: dict | None = None) -> None:
        """Make `version` the champion (the previous one is archived). Also the rollback: promote an old version."""
        from deltalake import DeltaTable

        rows = self.rows()
        if rows.height == 0 or version not in rows.get_column("version").to_list():
            raise LookupError(f"unknown model version {version!r}")
        if not (Path(self.models_dir) / version / MODEL_FILE).exists():
            raise FileNotFoundError(f"artifacts of {version} are missing under {self.models_dir}")
        table = DeltaTable(self.lake.uri(*REGISTRY_TABLE))
        table.update(updates={"status": "'archived'"}, predicate=f"status = 'champion' and version != '{version}'")
        now = datetime.now(UTC).isoformat()
        table.update(updates={"status": "'champion'", "promoted_by": f"'{promoted_by}'",
                              "promoted_at": f"cast('{now}' as timestamp)"},
                     predicate=f"version = '{version}'")
        self._log(version, "promoted", promoted_by, details or {})

    def reject(self, version: str, decided_by: str, details: dict | None = None) -> None:
        from deltalake import DeltaTable

        DeltaTable(self.lake.uri(*REGISTRY_TABLE)).update(
            updates={"status": "'archived'"}, predicate=f"version = '{version}' and status = 'challenger'")
        self._log(version, "rejected", decided_by, details or {})

    def decisions(self) -> pl.DataFrame:
        if not self.lake.exists(*DECISIONS_TABLE):
            return pl.DataFrame()
        return self.lake.scan(*DECISIONS_TABLE).sort("decided_at").collect()

    def load(self, version: str | None = None) -> LoadedModel:
        """A version's artifacts (the champion's by default); `assets.modeling.pipeline.load_model` scores with it."""
        version = version or self.require_champion()
        path = Path(self.models_dir) / version
        return LoadedModel(version=version, card=json.loads((path / "model.json").read_text()), path=path)
