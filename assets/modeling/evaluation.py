"""Evaluation of churn scores for a model version: gains/lift tables, summary metrics and PNG charts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from assets.modeling.calibration import expected_calibration_error
from domain.metrics import binary_metrics


def _labels_and_scores(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim != 1 or y.shape != p.shape or y.size == 0:
        raise ValueError(f"y and p must be non-empty 1-d arrays of equal length, got {y.shape} and {p.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if y.sum() == 0:
        raise ValueError("lift is undefined without any churners")
    return y.astype(np.int64), p


def top_count(n: int, fraction: float) -> int:
    """ceil(fraction * n), ignoring float noise such as 0.1 * 30 = 3.0000000000000004 (which would give 4)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    return max(1, math.ceil(round(fraction * n, 9)))


def _descending_order(p: np.ndarray) -> np.ndarray:
    # Stable sort of -p: equal scores keep their input order, so tables are reproducible.
    return np.argsort(-p, kind="stable")


def gains_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """Customers ranked by descending risk, cut into `bins` groups of near-equal size (decile 1 = highest risk),
    with how many churners each group and each top-k share captures."""
    y, p = _labels_and_scores(y, p)
    if bins < 1:
        raise ValueError("bins must be at least 1")
    n = y.size
    ranked = y[_descending_order(p)]
    decile = np.arange(n) * bins // n + 1
    frame = (
        pl.DataFrame({"decile": decile, "churned": ranked})
        .group_by("decile", maintain_order=True)
        .agg(rows=pl.len(), churners=pl.col("churned").sum())
    )
    base_rate = y.mean()
    total_churners = int(y.sum())
    return frame.with_columns(
        churn_rate=pl.col("churners") / pl.col("rows"),
        lift=pl.col("churners") / pl.col("rows") / base_rate,
        cumulative_rows_share=pl.col("rows").cum_sum() / n,
        cumulative_gain=pl.col("churners").cum_sum() / total_churners,
        cumulative_lift=(pl.col("churners").cum_sum() / pl.col("rows").cum_sum()) / base_rate,
    ).with_columns(pl.col("decile").cast(pl.Int64), pl.col("rows").cast(pl.Int64), pl.col("churners").cast(pl.Int64))


def lift_at(y: np.ndarray, p: np.ndarray, fraction: float = 0.1) -> float:
    """Churn rate among the top `fraction` of customers by score over the base rate: what a campaign of that size
    gains over random targeting."""
    y, p = _labels_and_scores(y, p)
    top = y[_descending_order(p)][: top_count(y.size, fraction)]
    return float(top.mean() / y.mean())


def evaluation_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The per-version scorecard: discrimination, probability quality, calibration and top-decile lift."""
    metrics = binary_metrics(y, p)
    metrics["ece"] = expected_calibration_error(y, p, bins=10)
    metrics["lift_at_10"] = lift_at(y, p, 0.1)
    return metrics


def _pyplot():
    """pyplot on the non-interactive Agg backend, so charts render in workers without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        _pyplot().close(fig)
    return path


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """ROC curves of several models (or versions) on one chart, AUC in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    ax.set(xlabel="False positive rate", ylabel="True positive rate (churners found)", title="ROC",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_precision_recall(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Precision-recall curves with average precision in the legend; the base rate is the random baseline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, (y, p) in curves.items():
        precision, recall, _ = precision_recall_curve(y, p)
        line = ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, p):.3f})")[0]
        ax.axhline(float(np.mean(y)), linestyle=":", color=line.get_color(), linewidth=1)
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_reliability(curves: dict[str, pl.DataFrame], path: Path) -> Path:
    """Reliability curves (e.g. before and after calibration) against the perfect-calibration diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, curve in curves.items():
        ax.plot(curve["mean_predicted"].to_numpy(), curve["observed_rate"].to_numpy(), marker="o", label=name)
    ax.set(xlabel="Mean predicted churn probability", ylabel="Observed churn rate", title="Reliability",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_gains(tables: dict[str, pl.DataFrame], path: Path) -> Path:
    """Cumulative gain curves from gains tables, with the random-targeting diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    for name, table in tables.items():
        share = np.concatenate([[0.0], table["cumulative_rows_share"].to_numpy()])
        gain = np.concatenate([[0.0], table["cumulative_gain"].to_numpy()])
        ax.plot(share, gain, marker="o", label=name)
    ax.set(xlabel="Share of customers contacted (highest risk first)", ylabel="Share of churners captured",
           title="Cumulative gains", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_importance(importance: dict[str, float], path: Path, top: int = 20) -> Path:
    """Horizontal bars of the `top` most important features, largest at the top."""
    plt = _pyplot()
    ranked = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top]
    names = [name for name, _ in reversed(ranked)]
    values = [value for _, value in reversed(ranked)]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(ranked) + 1)))
    ax.barh(names, values)
    ax.set(xlabel="Importance", title=f"Top {len(ranked)} features")
    return _save(fig, path)
