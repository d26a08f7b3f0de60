"""Classification metrics used across training, evaluation and monitoring."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def _checked(y_true: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int8)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("metrics need both classes present")
    return y, p


def probability_losses(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Log loss and Brier score alone, as `binary_metrics` gives them, without the two sorts that rank metrics
    need: what a calibrator is chosen by."""
    y, p = _checked(y_true, p)
    return {"log_loss": float(log_loss(y, p, labels=[0, 1])), "brier": float(brier_score_loss(y, p))}


def binary_metrics(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, log loss, Brier score, base rate and row count for predicted probabilities `p`."""
    y, p = _checked(y_true, p)
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        **probability_losses(y, p),
        "base_rate": float(y.mean()),
        "rows": int(y.size),
    }


def normalised_auc(model_auc: float, oracle_auc: float) -> float:
    """How much of the achievable lift over chance the model captures: (AUC - 0.5) / (oracle AUC - 0.5)."""
    return (model_auc - 0.5) / (oracle_auc - 0.5)
