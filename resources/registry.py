"""Model registry: artifacts under `models/<version>/`, one row per version in the Delta table gold/model_registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from resources.lake import LakeResource

REGISTRY_TABLE = ("gold", "model_registry")


@dataclass(frozen=True)
class LoadedModel:
    version: str
    booster: object
    features: list[str]
    categories: dict[str, list[str]]
    best_iteration: int
    card: dict
    path: Path

    @property
    def reference_path(self) -> Path:
        return self.path / "reference.parquet"


class ModelRegistryResource(ConfigurableResource):
    models_dir: str = Field(description="Folder holding one sub-folder of artifacts per model version.")
    lake: LakeResource

    def register(self, version: str, booster, card: dict, reference: pl.DataFrame, status: str = "champion",
                 promoted_by: str = "") -> Path:
        """Write artifacts and a registry row; a new champion archives the previous one."""
        from deltalake import DeltaTable

        path = Path(self.models_dir) / version
        path.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(path / "model.txt"), num_iteration=card["best_iteration"])
        (path / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
        reference.write_parquet(path / "reference.parquet")
        if status == "champion" and self.lake.exists(*REGISTRY_TABLE):
            DeltaTable(self.lake.uri(*REGISTRY_TABLE)).update(
                updates={"status": "'archived'"}, predicate="status = 'champion'"
            )
        row = pl.DataFrame(
            {
                "version": [version],
                "created_at": [datetime.now(UTC)],
                "status": [status],
                "promoted_by": [promoted_by],
                "path": [str(path)],
                "features": [json.dumps(card["features"])],
                "params": [json.dumps(card["params"], sort_keys=True)],
                "train_snapshots": [json.dumps(card["split"]["train"], default=str)],
                "validation_snapshots": [json.dumps(card["split"]["validation"], default=str)],
                "training_inputs": [json.dumps(card["training_inputs"], sort_keys=True)],
                "metrics": [json.dumps(card["validation_metrics"], sort_keys=True)],
            }
        )
        self.lake.append(*REGISTRY_TABLE, row)
        return path

    def champion_version(self) -> str:
        if not self.lake.exists(*REGISTRY_TABLE):
            raise LookupError("no model registered yet: materialize churn_model first")
        champions = self.lake.scan(*REGISTRY_TABLE).filter(pl.col("status") == "champion").collect()
        if champions.height != 1:
            raise LookupError(f"expected one champion in the registry, found {champions.height}")
        return champions.item(0, "version")

    def load(self, version: str | None = None) -> LoadedModel:
        import lightgbm as lgb

        version = version or self.champion_version()
        path = Path(self.models_dir) / version
        card = json.loads((path / "model.json").read_text())
        booster = lgb.Booster(model_file=str(path / "model.txt"))
        return LoadedModel(
            version=version, booster=booster, features=card["features"], categories=card["categories"],
            best_iteration=card["best_iteration"], card=card, path=path,
        )
