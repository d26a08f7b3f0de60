"""A registered churn model as one scoring pipeline: derived features, LightGBM, calibration and reason codes.

Everything needed to reproduce a version's scores lives in its JSON card (plus the LightGBM model file): the
feature list, category levels, the BG/NBD parameters behind the `bgnbd_p_alive` feature and the calibrator's
parameters. The registry stores those artifacts without knowing this class (`save` writes them, `load_model` turns
them back into a pipeline). A version can also be one of the baselines (assets/modeling/scorers.py), when it won
its training run; `load_model` rebuilds whichever kind the card names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from assets.modeling.baselines import BgNbdBaseline, prepared_with_bgnbd
from assets.modeling.calibration import Calibrator, sigmoid
from assets.modeling.scorers import BgNbdScorer, LogisticScorer, RfmRuleScorer, scorer_from_file
from assets.modeling.training import to_model_matrix
from resources.registry import LoadedModel, ModelRegistryResource

REASON_COUNT = 3


@dataclass(frozen=True)
class ChurnPipeline:
    booster: object  # lightgbm.Booster
    features: list[str]
    categories: dict[str, list[str]]
    best_iteration: int
    calibrator: Calibrator
    bgnbd: BgNbdBaseline | None = None
    kind = "lightgbm"

    def save(self, model_file: Path) -> dict:
        """Write the booster (up to its best iteration); return the card fields that rebuild the pipeline."""
        self.booster.save_model(str(model_file), num_iteration=self.best_iteration)
        return {"model_kind": self.kind, "features": self.features, "categories": self.categories,
                "best_iteration": self.best_iteration,
                "calibrator": self.calibrator.to_dict(),
                "bgnbd": self.bgnbd.to_dict() if self.bgnbd is not None else None}

    @classmethod
    def from_artifacts(cls, stored: LoadedModel) -> ChurnPipeline:
        import lightgbm as lgb  # slow to import: only where a model is loaded

        card = stored.card
        return cls(booster=lgb.Booster(model_file=str(stored.model_file)), features=card["features"],
                   categories=card["categories"], best_iteration=card["best_iteration"],
                   calibrator=Calibrator.from_dict(card["calibrator"]),
                   bgnbd=BgNbdBaseline.from_dict(card["bgnbd"]) if card.get("bgnbd") else None)

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        return prepared_with_bgnbd(frame, self.features, self.bgnbd)

    def raw_score(self, frame: pl.DataFrame, threads: int = 0) -> np.ndarray:
        """LightGBM's margin (log-odds) before calibration; on `threads` threads (0: LightGBM's default)."""
        matrix = to_model_matrix(self.prepare(frame), self.features, self.categories)
        return self.booster.predict(matrix, num_iteration=self.best_iteration, raw_score=True,
                                    **({"num_threads": threads} if threads else {}))

    def predict_uncalibrated(self, frame: pl.DataFrame, threads: int = 0) -> np.ndarray:
        return sigmoid(self.raw_score(frame, threads))

    def predict(self, frame: pl.DataFrame, threads: int = 0) -> np.ndarray:
        """Calibrated P(churn)."""
        return self.calibrator.apply(self.predict_uncalibrated(frame, threads))

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """TreeSHAP contributions per feature (log-odds), last column the base value; rows sum to the raw score."""
        matrix = to_model_matrix(self.prepare(frame), self.features, self.categories)
        return self.booster.predict(matrix, num_iteration=self.best_iteration, pred_contrib=True)


ScoringModel = ChurnPipeline | LogisticScorer | RfmRuleScorer | BgNbdScorer


@dataclass(frozen=True)
class RegisteredModel(LoadedModel):
    """A registry version with its scoring pipeline rebuilt: what scoring, drift and the gate score with."""

    pipeline: ScoringModel

    @property
    def kind(self) -> str:
        return self.pipeline.kind


def scoring_model(stored: LoadedModel) -> ScoringModel:
    """A version's model of whichever kind won its training run (versions from before baselines could win are
    LightGBM)."""
    kind = stored.card.get("model_kind", ChurnPipeline.kind)
    if kind == ChurnPipeline.kind:
        return ChurnPipeline.from_artifacts(stored)
    return scorer_from_file(kind, stored.model_file, Calibrator.from_dict(stored.card["calibrator"]))


def load_model(registry: ModelRegistryResource, version: str | None = None) -> RegisteredModel:
    """The registered `version` (the champion by default), ready to score."""
    stored = registry.load(version)
    return RegisteredModel(version=stored.version, card=stored.card, path=stored.path, pipeline=scoring_model(stored))


def top_reasons(contributions: np.ndarray, features: list[str], k: int = REASON_COUNT) -> pl.DataFrame:
    """The k features pushing each row's score furthest from the base value, as reason_{i}_feature /
    reason_{i}_direction ("raises" or "lowers" churn risk) / reason_{i}_contribution (in the model's raw score:
    log-odds, or rank points for the RFM rule)."""
    per_feature = contributions[:, : len(features)]
    k = min(k, len(features))
    # Largest absolute contribution first; a stable sort keeps ties in feature order, so reasons are reproducible.
    order = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :k]
    names = np.asarray(features, dtype=object)
    columns: dict[str, pl.Series] = {}
    for i in range(k):
        chosen = np.take_along_axis(per_feature, order[:, i : i + 1], axis=1)[:, 0]
        columns[f"reason_{i + 1}_feature"] = pl.Series(names[order[:, i]].tolist(), dtype=pl.Utf8)
        columns[f"reason_{i + 1}_direction"] = pl.Series(np.where(chosen >= 0, "raises", "lowers").tolist(),
                                                         dtype=pl.Utf8)
        columns[f"reason_{i + 1}_contribution"] = pl.Series(chosen, dtype=pl.Float64)
    return pl.DataFrame(columns)
