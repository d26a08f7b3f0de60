"""The baselines as servable models: a registry version can be a logistic regression, the RFM rule or BG/NBD.

Each scorer offers what the LightGBM pipeline offers (`ChurnPipeline`), so scoring, the gate and drift treat every
version alike:
- `raw_score`: the model's own score, rising with risk; `predict_uncalibrated` is its sigmoid;
- `predict`: the calibrated P(churn), with a calibrator fitted on the calibration fold like LightGBM's;
- `contributions`: one column per feature plus the base value last, and each row sums to its raw score, so the
  reason codes come from the model's own arithmetic:
  - logistic regression: coefficient × standardised value, per source feature (its missing flag and one-hot
    levels folded in), base = the intercept;
  - RFM rule: each rank's distance from the middle, base 0;
  - BG/NBD: exact Shapley values of its log-odds over its four inputs, against the median training customer.
- `save`: the fitted parameters as JSON in the version's model file, no pickle, so a version outlives a library
  upgrade and can be read by eye.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from math import factorial
from pathlib import Path

import numpy as np
import polars as pl

from assets.modeling.baselines import (
    BGNBD_FEATURE,
    RFM_FEATURES,
    BgNbdBaseline,
    LogisticBaseline,
    prepared_with_bgnbd,
    rfm_ranks,
)
from assets.modeling.calibration import Calibrator, logit, sigmoid

BGNBD_FEATURES = ("orders_lifetime", "recency_days", "first_order_age_days", "tenure_days")
MISSING_CATEGORY = "missing"  # the logistic baseline's fill value for a null category


class _Scorer:
    """Shared scoring arithmetic; subclasses define `raw_score`, `contributions`, `kind` and `_parameters`."""

    kind: str
    features: list[str]
    calibrator: Calibrator

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    def raw_score(self, frame: pl.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def predict_uncalibrated(self, frame: pl.DataFrame, threads: int = 0) -> np.ndarray:
        return sigmoid(self.raw_score(frame))  # numpy arithmetic: `threads` is LightGBM's, unused here

    def predict(self, frame: pl.DataFrame, threads: int = 0) -> np.ndarray:
        return self.calibrator.apply(self.predict_uncalibrated(frame, threads))

    def _parameters(self) -> dict:
        raise NotImplementedError

    def save(self, model_file: Path) -> dict:
        model_file.write_text(json.dumps({"model_kind": self.kind, **self._parameters()}, indent=2, sort_keys=True))
        return {"model_kind": self.kind, "features": self.features, "calibrator": self.calibrator.to_dict()}


@dataclass(frozen=True)
class LogisticScorer(_Scorer):
    """The logistic baseline's fitted numbers: median imputation (with a missing flag where training had gaps),
    standardisation, one-hot levels and the coefficients."""

    numeric: list[str]
    medians: list[float]
    flagged: list[str]  # numeric features that carry a missing flag
    means: list[float]  # of the numeric columns, then of the flags
    scales: list[float]
    levels: dict[str, list[str]]
    numeric_coef: list[float]  # numeric columns, then flags
    level_coef: dict[str, list[float]]
    intercept: float
    calibrator: Calibrator
    bgnbd: BgNbdBaseline | None = None  # when it was fitted with LightGBM's bgnbd_p_alive feature
    kind = "logistic_regression"

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.levels]

    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        return prepared_with_bgnbd(frame, self.numeric, self.bgnbd)

    @classmethod
    def from_baseline(cls, baseline: LogisticBaseline, calibrator: Calibrator,
                      bgnbd: BgNbdBaseline | None = None) -> LogisticScorer:
        preprocess = baseline.pipeline.named_steps["preprocess"]
        imputer, scaler = (step for _, step in preprocess.named_transformers_["num"].steps)
        coef = baseline.pipeline.named_steps["model"].coef_[0]
        flagged = ([baseline.numeric[i] for i in imputer.indicator_.features_]
                   if imputer.indicator_ is not None else [])
        width = len(baseline.numeric) + len(flagged)
        levels, level_coef, offset = {}, {}, width
        if baseline.categorical:
            encoder = preprocess.named_transformers_["cat"].steps[-1][1]
            for name, categories in zip(baseline.categorical, encoder.categories_, strict=True):
                levels[name] = [str(c) for c in categories]
                level_coef[name] = [float(v) for v in coef[offset:offset + len(categories)]]
                offset += len(categories)
        if offset != coef.size:
            raise ValueError(f"the logistic baseline has {coef.size} coefficients, its transforms give {offset}")
        return cls(numeric=list(baseline.numeric), medians=[float(v) for v in imputer.statistics_],
                   flagged=flagged, means=[float(v) for v in scaler.mean_], scales=[float(v) for v in scaler.scale_],
                   levels=levels, numeric_coef=[float(v) for v in coef[:width]], level_coef=level_coef,
                   intercept=float(baseline.pipeline.named_steps["model"].intercept_[0]), calibrator=calibrator,
                   bgnbd=bgnbd if BGNBD_FEATURE in baseline.numeric else None)

    def _inputs(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """The imputed numeric columns, the missing-value flags, and each categorical column's coefficient."""
        frame = self.prepare(frame)
        # one rows × features array, imputed in place: at a million rows each copy of it is a third of a gigabyte
        filled = frame.select([pl.col(c).cast(pl.Float64) for c in self.numeric]).to_numpy(writable=True) \
            if self.numeric else np.empty((frame.height, 0))
        missing = np.isnan(filled)
        flags = missing[:, [self.numeric.index(c) for c in self.flagged]].astype(np.float64)
        np.copyto(filled, np.broadcast_to(np.asarray(self.medians, dtype=np.float64), filled.shape), where=missing)
        del missing
        categorical = []
        for name, levels in self.levels.items():
            text = frame.get_column(name).cast(pl.String).fill_null(MISSING_CATEGORY)
            # a level unseen in training adds nothing, like a one-hot encoder that ignores it
            categorical.append(text.replace_strict(list(levels), list(self.level_coef[name]), default=0.0,
                                                   return_dtype=pl.Float64).to_numpy())
        return filled, flags, categorical

    def _terms(self, frame: pl.DataFrame) -> np.ndarray:
        """Each feature's share of the log-odds (rows × features), before the intercept."""
        filled, flags, categorical = self._inputs(frame)
        columns = np.hstack([filled, flags])
        weighted = (columns - np.asarray(self.means)) / np.asarray(self.scales) * np.asarray(self.numeric_coef)
        terms = weighted[:, : len(self.numeric)].copy()
        for j, name in enumerate(self.flagged):
            terms[:, self.numeric.index(name)] += weighted[:, len(self.numeric) + j]
        return np.column_stack([terms, *categorical]) if categorical else terms

    def raw_score(self, frame: pl.DataFrame) -> np.ndarray:
        # The sum of the terms as one matrix-vector product: no rows × features intermediates, which at a million
        # rows are what scoring a whole fold spends its time and memory on.
        filled, flags, categorical = self._inputs(frame)
        slope = np.asarray(self.numeric_coef) / np.asarray(self.scales)
        width = filled.shape[1]
        offset = self.intercept - float(np.dot(np.asarray(self.means), slope))
        score = filled @ slope[:width] + flags @ slope[width:] + offset
        for column in categorical:
            score += column
        return score

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        terms = self._terms(frame)
        return np.column_stack([terms, np.full(frame.height, self.intercept)])

    def _parameters(self) -> dict:
        return {"numeric": self.numeric, "medians": self.medians, "flagged": self.flagged, "means": self.means,
                "scales": self.scales, "levels": self.levels, "numeric_coef": self.numeric_coef,
                "level_coef": self.level_coef, "intercept": self.intercept,
                "bgnbd": self.bgnbd.to_dict() if self.bgnbd is not None else None}

    @classmethod
    def from_parameters(cls, data: dict, calibrator: Calibrator) -> LogisticScorer:
        return cls(numeric=data["numeric"], medians=data["medians"], flagged=data["flagged"], means=data["means"],
                   scales=data["scales"], levels=data["levels"], numeric_coef=data["numeric_coef"],
                   level_coef=data["level_coef"], intercept=float(data["intercept"]), calibrator=calibrator,
                   bgnbd=BgNbdBaseline.from_dict(data["bgnbd"]) if data.get("bgnbd") else None)


@dataclass(frozen=True)
class RfmRuleScorer(_Scorer):
    """The RFM rule (`rfm_heuristic_score`): the mean of three percentile ranks within each snapshot, less 0.5.
    Nothing is fitted but the calibrator; the ranks compare a customer with the others scored alongside."""

    calibrator: Calibrator
    kind = "rfm_heuristic"

    @property
    def features(self) -> list[str]:
        return list(RFM_FEATURES)

    def _terms(self, frame: pl.DataFrame) -> np.ndarray:
        return (rfm_ranks(frame) - 0.5) / 3.0

    def raw_score(self, frame: pl.DataFrame) -> np.ndarray:
        return self._terms(frame).sum(axis=1)

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        return np.column_stack([self._terms(frame), np.zeros(frame.height)])

    def _parameters(self) -> dict:
        return {}


def shapley_values(value: Callable[[dict[str, np.ndarray]], np.ndarray], row: dict[str, np.ndarray],
                   reference: dict[str, float]) -> np.ndarray:
    """Exact Shapley values of `value` per input (rows × inputs), then its value at `reference` last: each input
    of a coalition takes the row's value, the others the reference's. Rows sum to `value(row)`. Costs 2^inputs
    evaluations, so it is for models with a handful of inputs."""
    names = list(row)
    n = len(names)
    size = len(next(iter(row.values())))
    cache: dict[frozenset, np.ndarray] = {}

    def at(coalition: frozenset) -> np.ndarray:
        if coalition not in cache:
            cache[coalition] = value({k: row[k] if k in coalition else np.full(size, reference[k]) for k in names})
        return cache[coalition]

    out = np.zeros((size, n + 1))
    for i, name in enumerate(names):
        others = [k for k in names if k != name]
        for k in range(n):
            weight = factorial(k) * factorial(n - k - 1) / factorial(n)
            for subset in combinations(others, k):
                coalition = frozenset(subset)
                out[:, i] += weight * (at(coalition | {name}) - at(coalition))
    out[:, n] = at(frozenset())
    return out


@dataclass(frozen=True)
class BgNbdScorer(_Scorer):
    """BG/NBD's P(no order within the horizon) as the churn score; raw score = its log-odds."""

    bgnbd: BgNbdBaseline
    reference: dict[str, float]  # the median training customer, against whom the reasons are measured
    calibrator: Calibrator
    kind = "bgnbd"

    @property
    def features(self) -> list[str]:
        return list(BGNBD_FEATURES)

    @staticmethod
    def reference_customer(train: pl.DataFrame) -> dict[str, float]:
        medians = train.select([pl.col(c).cast(pl.Float64).median() for c in BGNBD_FEATURES]).row(0)
        return {c: float(v) if v is not None else 0.0 for c, v in zip(BGNBD_FEATURES, medians, strict=True)}

    def _log_odds(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        # NaN stands for a missing value in the arrays; BG/NBD's inputs read nulls
        return logit(self.bgnbd.predict_proba(pl.DataFrame(columns).fill_nan(None)))

    def _inputs(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        present = [c for c in BGNBD_FEATURES if c in frame.columns]
        values = frame.select([pl.col(c).cast(pl.Float64) for c in present])
        return {c: values.get_column(c).to_numpy().astype(np.float64) if c in present
                else np.full(frame.height, np.nan) for c in BGNBD_FEATURES}

    def raw_score(self, frame: pl.DataFrame) -> np.ndarray:
        return self._log_odds(self._inputs(frame))

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        return shapley_values(self._log_odds, self._inputs(frame), self.reference)

    def _parameters(self) -> dict:
        return {"bgnbd": self.bgnbd.to_dict(), "reference": self.reference}


def scorer_from_file(kind: str, model_file: Path, calibrator: Calibrator):
    """A baseline version rebuilt from its model file."""
    data = json.loads(model_file.read_text())
    if kind == LogisticScorer.kind:
        return LogisticScorer.from_parameters(data, calibrator)
    if kind == RfmRuleScorer.kind:
        return RfmRuleScorer(calibrator=calibrator)
    if kind == BgNbdScorer.kind:
        return BgNbdScorer(bgnbd=BgNbdBaseline.from_dict(data["bgnbd"]), reference=data["reference"],
                           calibrator=calibrator)
    raise ValueError(f"unknown model kind {kind!r}")
