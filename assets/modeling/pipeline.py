"""A registered churn model as one scoring pipeline: derived features, LightGBM, calibration and reason codes.

Everything needed to reproduce a version's scores lives in its JSON card (plus `model.txt`): the feature list,
category levels, the BG/NBD parameters behind the `bgnbd_p_alive` feature and the calibrator's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from assets.modeling.baselines import BgNbdBaseline
from assets.modeling.bgnbd import bgnbd_inputs, p_alive
from assets.modeling.calibration import Calibrator
from assets.modeling.training import to_model_frame

BGNBD_FEATURE = "bgnbd_p_alive"
REASON_COUNT = 3


def with_bgnbd_feature(frame: pl.DataFrame, bgnbd: BgNbdBaseline) -> pl.DataFrame:
    """Add P(alive at T) from the fitted BG/NBD model, computed from the row's own history only (point in time)."""
    x, t_x, big_t = bgnbd_inputs(frame)
    return frame.with_columns(pl.Series(BGNBD_FEATURE, p_alive(bgnbd.params, x, t_x, big_t), pl.Float64))


@dataclass(frozen=True)
class ChurnPipeline:
    booster: object  # lightgbm.Booster
    features: list[str]
    categories: dict[str, list[str]]
    best_iteration: int
    calibrator: Calibrator
    bgnbd: BgNbdBaseline | None = None

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        if BGNBD_FEATURE in self.features and BGNBD_FEATURE not in frame.columns:
            if self.bgnbd is None:
                raise ValueError(f"the model uses {BGNBD_FEATURE} but carries no BG/NBD parameters")
            return with_bgnbd_feature(frame, self.bgnbd)
        return frame

    def raw_score(self, frame: pl.DataFrame) -> np.ndarray:
        """LightGBM's margin (log-odds) before calibration."""
        model_frame = to_model_frame(self.prepare(frame), self.features, self.categories)
        return self.booster.predict(model_frame, num_iteration=self.best_iteration, raw_score=True)

    def predict_uncalibrated(self, frame: pl.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.raw_score(frame)))

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated P(churn)."""
        return self.calibrator.apply(self.predict_uncalibrated(frame))

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """TreeSHAP contributions per feature (log-odds), last column the base value; rows sum to the raw score."""
        model_frame = to_model_frame(self.prepare(frame), self.features, self.categories)
        return self.booster.predict(model_frame, num_iteration=self.best_iteration, pred_contrib=True)


def top_reasons(contributions: np.ndarray, features: list[str], k: int = REASON_COUNT) -> pl.DataFrame:
    """The k features pushing each row's score furthest from the base value, as reason_{i}_feature /
    reason_{i}_direction ("raises" or "lowers" churn risk) / reason_{i}_contribution (log-odds)."""
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
