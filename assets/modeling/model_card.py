"""Model card of a churn model version for model-risk review, rendered as Markdown and as a standalone HTML page.

The card is first built as a small list of document blocks (headings, paragraphs, tables, figures) and then rendered
twice, so both outputs carry the same sections and figures. Every value from the registry or the evaluation is
escaped for its target format; missing optional parts become an explicit "not available" sentence.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

SECTION_TITLES: tuple[str, ...] = (
    "Intended use",
    "Data and windows",
    "Performance out of time",
    "Model choice",
    "Calibration",
    "Lift and gains",
    "Feature-group ablation",
    "Global importance",
    "Fairness",
    "Tuning",
    "Champion–challenger decision",
    "Limitations",
    "Version lineage",
)
MODEL_LABELS: dict[str, str] = {
    "lightgbm_calibrated": "LightGBM (calibrated)",
    "lightgbm_raw": "LightGBM (uncalibrated)",
    "logistic_regression": "Logistic regression",
    "rfm_heuristic": "RFM heuristic",
    "bgnbd": "BG/NBD",
}
WINDOW_LABELS: tuple[tuple[str, str], ...] = (
    ("train", "Training"),
    ("early_stopping", "Early stopping"),
    ("calibration", "Calibration"),
    ("validation", "Validation (out of time)"),
)
TOP_FEATURES = 15
NOT_AVAILABLE = "n/a"
# Plot references must be plain relative PNG paths: no scheme, no absolute path, no parent directory, no spaces.
_SAFE_PNG = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9_./-]+\.png$")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&])")
_MD_BLOCK_START = re.compile(r"^(?:([-+=#~])|(\d+)([.)]))")  # would open a list, heading or rule at line start


@dataclass(frozen=True)
class Code:
    """Identifier-like text (feature, table, hash, method) shown in monospace."""

    text: str


Inline = str | Code | tuple[str | Code, ...]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    content: Inline


@dataclass(frozen=True)
class Bullets:
    items: tuple[Inline, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]
    numeric: frozenset[int] = frozenset()  # column indexes aligned right


@dataclass(frozen=True)
class Figure:
    src: str
    alt: str


Block = Heading | Para | Bullets | Table | Figure


# --- value formatting -------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any, digits: int = 4) -> str:
    """Fixed decimals (4 for metrics); "n/a" for None, NaN or anything that is not a number."""
    return f"{float(value):.{digits}f}" if _is_number(value) else NOT_AVAILABLE


def _signed(value: Any) -> str:
    return f"{float(value):+.4f}" if _is_number(value) else NOT_AVAILABLE


def _count(value: Any) -> str:
    return f"{int(value):,}" if _is_number(value) else NOT_AVAILABLE


def _percent(fraction: Any) -> str:
    return f"{float(fraction) * 100:g}%" if _is_number(fraction) else NOT_AVAILABLE


def _iso(value: Any) -> str:
    """ISO text for dates and datetimes; strings are assumed to be ISO already."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return NOT_AVAILABLE if value is None or value == "" else str(value)


def _param(value: Any) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.6g}"
    return str(value)


def _model_label(name: str) -> Inline:
    return MODEL_LABELS[name] if name in MODEL_LABELS else Code(name)


def _codes(names: Sequence[Any]) -> Inline:
    """Comma-separated code spans."""
    parts: list[str | Code] = []
    for i, name in enumerate(names):
        if i:
            parts.append(", ")
        parts.append(Code(str(name)))
    return tuple(parts)


def _window(dates: Any) -> tuple[str, str, int]:
    """(first, last, count) of a list of snapshot dates."""
    values = sorted(_iso(d) for d in dates or [])
    if not values:
        return NOT_AVAILABLE, NOT_AVAILABLE, 0
    return values[0], values[-1], len(values)


def _horizon(card: Mapping[str, Any]) -> str:
    days = card.get("label_horizon_days")
    return f"{int(days)} days" if _is_number(days) else "the label horizon (not recorded)"


def _figure(plots: Mapping[str, Any], key: str, alt: str) -> Block:
    name = plots.get(key)
    if isinstance(name, str) and _SAFE_PNG.match(name):
        return Figure(name, alt)
    return Para(f"{alt}: not available.")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Inline]], numeric: Sequence[int], missing: str) -> Block:
    if not rows:
        return Para(missing)
    return Table(tuple(headers), tuple(tuple(r) for r in rows), frozenset(numeric))


# --- sections ---------------------------------------------------------------------------------------------------


def _title(card: Mapping[str, Any]) -> list[Block]:
    version, status = str(card.get("version", "unknown")), str(card.get("status", "unknown"))
    return [
        Heading(1, f"Model card: churn model {version} ({status})"),
        Para(f"Version {version}, status {status}, created {_iso(card.get('created_at'))}. Performance figures refer "
             "to this version on the out-of-time validation window unless a section says otherwise."),
    ]


def _legal_basis(basis: str) -> str:
    if basis == "consent":
        return ("Legal basis of profiling: consent (ASSAY_PROFILING_LEGAL_BASIS). Scoring serves only customers "
                "with profiling consent as of the snapshot and still when scored; campaign exports also need "
                "marketing consent.")
    return (f"Legal basis of profiling: {basis.replace('_', ' ')} (ASSAY_PROFILING_LEGAL_BASIS). Every customer "
            "of the population is scored; campaign exports still need marketing consent.")


def _intended_use(card: Mapping[str, Any]) -> list[Block]:
    return [
        Heading(2, "Intended use"),
        Para(f"Rank active customers by their risk of churning within the next {_horizon(card)}, so that retention "
             "teams can decide whom to contact first in outreach campaigns. The score is a calibrated probability "
             "of churn over that horizon."),
        Bullets((
            "Out of scope: credit, pricing, employment, or any other decision with legal or similarly significant "
            "effect on a person. The score must not feed such decisions.",
            _legal_basis(card.get("profiling_legal_basis", "consent")),
            "The score predicts churn, not the effect of contacting a customer; it does not say who will respond to "
            "an offer.",
        )),
    ]


def _data_and_windows(card: Mapping[str, Any]) -> list[Block]:
    split = card.get("split") or {}
    window_rows = [(label, *_window_cells(split.get(key))) for key, label in WINDOW_LABELS]
    inputs = card.get("training_inputs") or {}
    input_rows = [(Code(str(name)), _count(version)) for name, version in sorted(inputs.items())]
    features = list(card.get("features") or [])
    excluded = list(card.get("excluded_sensitive") or [])
    return [
        Heading(2, "Data and windows"),
        Para("Snapshot dates are split into four windows; the validation window is the out-of-time hold-out "
             "used for every performance figure below."),
        _table(("Window", "First snapshot", "Last snapshot", "Snapshots"), window_rows, (3,),
               "Snapshot windows: not available."),
        *_adapted(split.get("adapted")),
        Para(f"Label horizon: {_horizon(card)} after each snapshot date."),
        _table(("Training input", "Delta version"), input_rows, (1,), "Training input versions: not available."),
        Para(("dbt manifest hash: ", Code(str(card.get("dbt_manifest_hash") or NOT_AVAILABLE)),
              ". Trainer code version: ", Code(str(card.get("trainer_code_version") or NOT_AVAILABLE)), ".")),
        Para((f"Features ({len(features)}): ", *_codes(features), ".") if features else "Feature list: not available."),
        Para(("Sensitive attributes excluded from the features: ", *_codes(excluded), ".") if excluded
             else "Sensitive attributes excluded from the features: none recorded."),
        *_dropped(card.get("dropped_features") or {}),
    ]


def _adapted(adapted: Mapping[str, Any] | None) -> list[Block]:
    if not adapted:
        return []
    asked, used = adapted.get("requested") or {}, adapted.get("used") or {}
    folds = ", ".join(f"{name.replace('_', ' ')} {asked.get(name)} → {used.get(name)}"
                      for name in ("validation", "calibration", "early_stopping", "train") if name in used)
    return [Para(f"The labelled history was too short for the requested windows ({adapted.get('because')}), so "
                 f"they were shrunk together, each still purged by the label horizon: {folds} snapshots.")]


def _dropped(dropped: Mapping[str, str]) -> list[Block]:
    if not dropped:
        return []
    by_reason: dict[str, list[str]] = {}
    for name, reason in sorted(dropped.items()):
        by_reason.setdefault(reason, []).append(name)
    parts: list = ["Left out of every model because the training window gave them no information: "]
    for i, (reason, names) in enumerate(sorted(by_reason.items())):
        parts += [*_codes(names), f" ({reason})", "; " if i < len(by_reason) - 1 else "."]
    return [Para(tuple(parts))]


def _window_cells(dates: Any) -> tuple[str, str, str]:
    first, last, count = _window(dates)
    return first, last, _count(count)


def _auc_key(item: tuple[str, Mapping[str, Any]]) -> tuple[int, float, str]:
    auc = item[1].get("auc")
    return (0, -float(auc), item[0]) if _is_number(auc) else (1, 0.0, item[0])


def _performance(card: Mapping[str, Any], evaluation: Mapping[str, Any]) -> list[Block]:
    metrics: Mapping[str, Mapping[str, Any]] = evaluation.get("metrics") or {}
    first, last, _ = _window((card.get("split") or {}).get("validation"))
    blocks: list[Block] = [
        Heading(2, "Performance out of time"),
        Para(f"All models are scored on the validation window ({first} .. {last}), sorted by AUC. Lift@10% is the "
             "churn rate among the 10% highest scores divided by the base rate."),
    ]
    rows = [
        (_model_label(name), _num(m.get("auc")), _num(m.get("pr_auc")), _num(m.get("log_loss")), _num(m.get("brier")),
         _num(m.get("ece")), _num(m.get("lift_at_10")))
        for name, m in sorted(metrics.items(), key=_auc_key)
    ]
    blocks.append(_table(("Model", "AUC", "PR-AUC", "Log loss", "Brier", "ECE", "Lift@10%"), rows, range(1, 7),
                         "Out-of-time metrics: not available."))
    reference = metrics.get("lightgbm_calibrated") or next(iter(metrics.values()), {})
    if reference:
        blocks.append(Para(f"Base rate {_num(reference.get('base_rate'))} over {_count(reference.get('rows'))} "
                           "customers in the validation window."))
    oracle, normalised = evaluation.get("oracle_auc"), evaluation.get("normalised_auc")
    if _is_number(oracle):
        blocks.append(Para(f"Oracle AUC (scores equal to the simulator's true churn probabilities): {_num(oracle)}. "
                           f"Normalised AUC, (AUC − 0.5) / (oracle AUC − 0.5): {_num(normalised)}."))
    else:
        blocks.append(Para("Oracle and normalised AUC: not available, because the true churn probabilities are not "
                           "known for this data."))
    if "bgnbd" not in metrics:
        blocks.append(Para("BG/NBD baseline: not available for this evaluation."))
    plots = evaluation.get("plots") or {}
    blocks += [_figure(plots, "roc", "ROC curve"), _figure(plots, "precision_recall", "Precision-recall curve")]
    return blocks


REASON_SOURCES: dict[str, str] = {
    "lightgbm_calibrated": "TreeSHAP contributions of the LightGBM model (log-odds)",
    "logistic_regression": "coefficient × standardised value per feature (log-odds)",
    "rfm_heuristic": "each rank's distance from the middle (rank points)",
    "bgnbd": "exact Shapley values of the BG/NBD log-odds against the median training customer",
}


def _model_choice(evaluation: Mapping[str, Any]) -> list[Block]:
    choice = evaluation.get("model_choice") or {}
    blocks: list[Block] = [Heading(2, "Model choice")]
    if not choice:
        return [*blocks, Para("Model choice: not recorded; this version is the LightGBM model.")]
    chosen, runner_up = str(choice.get("chosen")), str(choice.get("runner_up"))
    rows = [(_model_label(str(c.get("model"))), _num(c.get("auc")), _num(c.get("ece")),
             "yes" if c.get("eligible", True) else "no", "yes" if c.get("model") == chosen else "no")
            for c in choice.get("candidates") or []]
    return [
        *blocks,
        Para(("LightGBM and the baselines are candidates alike: each is calibrated on the calibration snapshots and "
              "scored on the validation snapshots, and of those whose ECE there is within the gate's limit "
              f"({_num(choice.get('max_ece'))}) the highest AUC is served. This version is ",
              _model_label(chosen), f", {_signed(choice.get('auc_margin'))} AUC against the best of the others, ",
              _model_label(runner_up), f". Its reason codes are the {REASON_SOURCES.get(chosen, 'model’s own')}.")),
        _table(("Candidate", "AUC", "ECE", "Within the ECE limit", "Served"), rows, (1, 2),
               "Candidates: not available."),
    ]


def _calibration(evaluation: Mapping[str, Any]) -> list[Block]:
    cal = evaluation.get("calibration") or {}
    blocks: list[Block] = [Heading(2, "Calibration")]
    if not cal:
        return [*blocks, Para("Calibration details: not available.")]
    rows = [
        (Code(str(s.get("method"))), _num(s.get("log_loss")), _num(s.get("brier")), _num(s.get("ece")),
         "yes" if s.get("chosen") else "no")
        for s in cal.get("selection") or []
    ]
    return [
        *blocks,
        Para(("Method: ", Code(str(cal.get("method") or NOT_AVAILABLE)),
              f". Expected calibration error before → after: {_num(cal.get('ece_before'))} → "
              f"{_num(cal.get('ece_after'))}.")),
        _table(("Candidate", "Log loss", "Brier", "ECE", "Chosen"), rows, (1, 2, 3),
               "Calibration method selection: not available."),
        _figure(evaluation.get("plots") or {}, "reliability", "Reliability plot"),
    ]


def _gains(evaluation: Mapping[str, Any]) -> list[Block]:
    rows = [
        (_count(g.get("decile")), _count(g.get("rows")), _count(g.get("churners")), _num(g.get("churn_rate")),
         _num(g.get("lift")), _num(g.get("cumulative_gain")), _num(g.get("cumulative_lift")))
        for g in evaluation.get("gains") or []
    ]
    return [
        Heading(2, "Lift and gains"),
        Para("Validation customers ranked by descending score and cut into deciles; decile 1 holds the highest risk. "
             "Cumulative gain is the share of all churners found in the deciles up to that row."),
        _table(("Decile", "Rows", "Churners", "Churn rate", "Lift", "Cumulative gain", "Cumulative lift"), rows,
               range(7), "Gains table: not available."),
        _figure(evaluation.get("plots") or {}, "gains", "Cumulative gains chart"),
    ]


def _ablation(evaluation: Mapping[str, Any]) -> list[Block]:
    rows = [
        (str(a.get("group")), _codes(list(a.get("features") or [])), _num(a.get("auc")), _signed(a.get("auc_delta")))
        for a in evaluation.get("ablation") or []
    ]
    blocks: list[Block] = [
        Heading(2, "Feature-group ablation"),
        Para("Out-of-time AUC of the LightGBM candidate refitted without each feature group, and its change against "
             "the full model (negative: the model is worse without the group)."),
        _table(("Group", "Features", "AUC", "AUC change"), rows, (2, 3), "Feature-group ablation: not available."),
        Heading(3, "BG/NBD feature decision"),
    ]
    decision = evaluation.get("bgnbd_feature") or {}
    if not decision:
        return [*blocks, Para("BG/NBD feature decision: not available.")]
    with_, without = decision.get("auc_with"), decision.get("auc_without")
    change = float(with_) - float(without) if _is_number(with_) and _is_number(without) else None
    verdict = "kept" if decision.get("kept") else "dropped"
    return [*blocks, Para(f"AUC with the BG/NBD features {_num(with_)}, without {_num(without)} (change "
                          f"{_signed(change)}): the BG/NBD features were {verdict}.")]


def _importance(evaluation: Mapping[str, Any]) -> list[Block]:
    gains = {str(k): float(v) for k, v in (evaluation.get("importance") or {}).items() if _is_number(v)}
    total = sum(gains.values())
    top = sorted(gains.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FEATURES]
    rows = [(str(rank), Code(name), _num(gain, 2), _num(gain / total) if total > 0 else NOT_AVAILABLE)
            for rank, (name, gain) in enumerate(top, start=1)]
    return [
        Heading(2, "Global importance"),
        Para(f"Top {min(TOP_FEATURES, len(gains))} of {len(gains)} features by total split gain of the LightGBM "
             "model. Gain shows what the model relies on, not a causal effect on churn."),
        _table(("Rank", "Feature", "Gain", "Share of gain"), rows, (0, 2, 3), "Feature importance: not available."),
        _figure(evaluation.get("plots") or {}, "importance", "Feature importance chart"),
    ]


def _with_interval(s: Mapping[str, Any], name: str) -> str:
    ci = s.get(f"{name}_ci")
    return f"{_num(s.get(name))} [{_num(ci[0])}, {_num(ci[1])}]" if ci else _num(s.get(name))


def _fairness(evaluation: Mapping[str, Any]) -> list[Block]:
    fair = evaluation.get("fairness") or {}
    blocks: list[Block] = [Heading(2, "Fairness")]
    if not fair:
        return [*blocks, Para("Fairness assessment: not available.")]
    blocks.append(Para(f"Judged at the operating threshold {_num(fair.get('threshold'))}, the score above which the "
                       f"top {_percent(fair.get('top_fraction'))} of customers would be contacted."))
    summary: Mapping[str, Mapping[str, Any]] = fair.get("summary") or {}
    rows = [
        (Code(attribute), _with_interval(s, "equal_opportunity_difference"), _with_interval(s, "selection_rate_ratio"),
         _num(s.get("auc_gap")), _codes(list(s.get("groups_compared") or [])) or "none")
        for attribute, s in sorted(summary.items())
    ]
    if rows:
        blocks += [
            Table(("Attribute", "Equal opportunity difference", "Selection rate ratio", "AUC gap", "Groups compared"),
                  tuple(rows), frozenset((1, 2, 3))),
            Para("n/a: fewer than two groups of the attribute had enough rows to compare. In brackets, the "
                 f"{_percent(next(iter(summary.values())).get('interval_level', 0.95))} bootstrap interval (rows "
                 "resampled within each group); a limit counts as violated only when the whole interval lies "
                 "beyond it."),
        ]
    else:
        blocks.append(Para("Fairness summary: not available, because no attribute had at least two groups with "
                           "enough rows to compare."))
    for attribute, groups in sorted((fair.get("per_group") or {}).items()):
        group_rows = [
            (str(g.get("group")), _count(g.get("rows")), _count(g.get("churners")), _num(g.get("auc")),
             _num(g.get("tpr")), _num(g.get("fpr")), _num(g.get("selection_rate")))
            for g in groups or []
        ]
        blocks += [
            Heading(3, f"Groups by {attribute}"),
            _table(("Group", "Rows", "Churners", "AUC", "TPR", "FPR", "Selection rate"), group_rows, range(1, 7),
                   "Per-group results: not available."),
        ]
    violations = [str(v) for v in fair.get("violations") or []]
    if violations:
        blocks += [Para("Violations of the release limits:"), Bullets(tuple(violations))]
    else:
        blocks.append(Para("Violations of the release limits: none."))
    return blocks


def _tuning(card: Mapping[str, Any], evaluation: Mapping[str, Any]) -> list[Block]:
    tuning = evaluation.get("tuning") or {}
    blocks: list[Block] = [Heading(2, "Tuning")]
    if tuning.get("skipped"):
        return [*blocks, Para(f"Not tuned; trained with the default parameters: {tuning['skipped']}.")]
    if tuning:
        best, default = tuning.get("best_score"), tuning.get("default_score")
        improvement = float(best) - float(default) if _is_number(best) and _is_number(default) else None
        blocks += [
            Para("Hyperparameters searched on rolling-origin folds that close before the out-of-time windows; scores "
                 "are mean fold AUCs."),
            Table(("Item", "Value"), (
                ("Best AUC", _num(best)),
                ("Default-parameter AUC", _num(default)),
                ("Improvement", _signed(improvement)),
                ("Trials completed", _count(tuning.get("n_trials_completed"))),
                ("Stopped by", Code(str(tuning.get("stopped_by", NOT_AVAILABLE)))),
                ("Imbalance handling", Code(str(tuning.get("imbalance", NOT_AVAILABLE)))),
            ), frozenset((1,))),
        ]
    else:
        blocks.append(Para("Tuning results: not available, because no hyperparameter search was run for this version."))
    params = card.get("params") or {}
    blocks += [
        Para(f"Final model: best iteration {_count(card.get('best_iteration'))}."),
        _table(("LightGBM parameter", "Value"), [(Code(str(k)), Code(_param(v))) for k, v in sorted(params.items())],
               (), "LightGBM parameters: not available."),
    ]
    return blocks


def _gate(evaluation: Mapping[str, Any]) -> list[Block]:
    gate = evaluation.get("gate") or {}
    blocks: list[Block] = [Heading(2, "Champion–challenger decision")]
    if not gate:
        return [*blocks, Para("Champion–challenger decision: not available, because the release gate has not "
                              "assessed this version.")]
    champion = gate.get("champion_version")
    against = f"compared against champion {champion}" if champion else "no champion existed to compare against"
    reasons = [str(r) for r in gate.get("reasons") or []]
    blocks.append(Para(f"Decision: {gate.get('decision', NOT_AVAILABLE)} ({against})."))
    blocks.append(Bullets(tuple(reasons)) if reasons else Para("No reasons recorded."))
    return blocks


def _limitations(card: Mapping[str, Any], evaluation: Mapping[str, Any]) -> list[Block]:
    first, last, _ = _window((card.get("split") or {}).get("validation"))
    items: list[Inline] = []
    if _is_number(evaluation.get("oracle_auc")):
        items.append("Synthetic data: the figures come from simulated customers whose true churn probabilities are "
                     "known. They describe the simulator, not a real customer base, and will not transfer as they are.")
    items += [
        "Point-in-time features only: each feature uses data available on its snapshot date. A late-arriving or "
        "backfilled source that leaks later information would make the out-of-time figures optimistic.",
        f"Drift: performance was measured on one validation window ({first} .. {last}). Changes in customers, "
        "products or campaigns shift scores and calibration; monitor drift and recalibrate or retrain when it appears.",
        "Small groups: groups with few rows are not compared and their per-group figures are noisy. Passing the "
        "fairness limits is not proof of fairness, and excluded sensitive attributes may still have proxies among "
        "the features.",
        "Outreach history: labels reflect whatever retention actions took place in the past, so the score mixes "
        "customer behaviour with past treatment.",
    ]
    return [Heading(2, "Limitations"), Bullets(tuple(items))]


def _lineage(card: Mapping[str, Any], lineage: Sequence[Mapping[str, Any]]) -> list[Block]:
    current = card.get("version")
    rows = [
        (str(r.get("version")) + (" (this card)" if r.get("version") == current else ""), _iso(r.get("created_at")),
         str(r.get("status") or NOT_AVAILABLE), str(r.get("promoted_by") or "—"), _num(r.get("auc")),
         _num(r.get("ece")))
        for r in lineage
    ]
    return [
        Heading(2, "Version lineage"),
        _table(("Version", "Created", "Status", "Promoted by", "AUC", "ECE"), rows, (4, 5),
               "Version lineage: not available."),
    ]


def build_blocks(card: Mapping[str, Any], evaluation: Mapping[str, Any], lineage: Sequence[Mapping[str, Any]]
                 ) -> list[Block]:
    """The card as format-neutral blocks, sections in review order."""
    return [
        *_title(card),
        *_intended_use(card),
        *_data_and_windows(card),
        *_performance(card, evaluation),
        *_model_choice(evaluation),
        *_calibration(evaluation),
        *_gains(evaluation),
        *_ablation(evaluation),
        *_importance(evaluation),
        *_fairness(evaluation),
        *_tuning(card, evaluation),
        *_gate(evaluation),
        *_limitations(card, evaluation),
        *_lineage(card, lineage),
    ]


# --- Markdown ---------------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Line breaks and tabs as single spaces, so a value cannot end a table row or start a new block."""
    return re.sub(r"\s+", " ", str(text))


def _md_code(text: str, in_table: bool) -> str:
    body = _one_line(text)
    if not body:
        return ""
    if in_table:
        body = body.replace("|", "\\|")  # GFM splits cells on pipes even inside code spans
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    pad = " " if "`" in body else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _md_inline(content: Inline, in_table: bool = False) -> str:
    if isinstance(content, Code):
        return _md_code(content.text, in_table)
    if isinstance(content, tuple):
        return "".join(_md_inline(part, in_table) for part in content)
    return _MD_SPECIAL.sub(r"\\\1", _one_line(content))


def _md_lead(text: str) -> str:
    """Backslash-escape a leading marker, e.g. "- x" or "1. x", so block text stays a plain paragraph or item."""
    match = _MD_BLOCK_START.match(text)
    if match is None:
        return text
    marker = f"\\{match[1]}" if match[1] else f"{match[2]}\\{match[3]}"
    return marker + text[match.end():]


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {_md_inline(block.text)}"
    if isinstance(block, Para):
        return _md_lead(_md_inline(block.content))
    if isinstance(block, Bullets):
        return "\n".join(f"- {_md_lead(_md_inline(item))}" for item in block.items)
    if isinstance(block, Figure):
        return f"![{_md_inline(block.alt)}]({block.src})"
    header = "| " + " | ".join(_md_inline(h, True) for h in block.headers) + " |"
    rule = "|" + "|".join(" ---: " if i in block.numeric else " --- " for i in range(len(block.headers))) + "|"
    body = ["| " + " | ".join(_md_inline(cell, True) or " " for cell in row) + " |" for row in block.rows]
    return "\n".join([header, rule, *body])


def render_markdown(blocks: Sequence[Block]) -> str:
    """GitHub-flavoured Markdown; free text is backslash-escaped so values cannot inject markup."""
    return "\n\n".join(_md_block(b) for b in blocks) + "\n"


# --- HTML -------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #fff;
       line-height: 1.5; margin: 0; }
main { max-width: 64rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #d0d7de; padding-bottom: .4rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .25rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em;
       background: #f6f8fa; padding: .05rem .25rem; border-radius: 3px; overflow-wrap: anywhere; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-size: .85rem; color: #59636e; }
@media print { main { max-width: none; padding: 0; } h2 { break-after: avoid; } table, figure { break-inside: avoid; } }
""".strip()


def _html_inline(content: Inline) -> str:
    if isinstance(content, Code):
        return f"<code>{html.escape(content.text)}</code>"
    if isinstance(content, tuple):
        return "".join(_html_inline(part) for part in content)
    return html.escape(str(content))


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_html_inline(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f"<p>{_html_inline(block.content)}</p>"
    if isinstance(block, Bullets):
        return "<ul>\n" + "\n".join(f"  <li>{_html_inline(item)}</li>" for item in block.items) + "\n</ul>"
    if isinstance(block, Figure):
        alt = html.escape(block.alt)
        return (f'<figure><img src="{html.escape(block.src)}" alt="{alt}">'
                f"<figcaption>{alt}</figcaption></figure>")

    def cell(tag: str, i: int, content: Inline) -> str:
        css = ' class="num"' if i in block.numeric else ""
        return f"<{tag}{css}>{_html_inline(content)}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(block.headers)) + "</tr>"
    body = ["<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in block.rows]
    return "<table>\n<thead>" + head + "</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def render_html(blocks: Sequence[Block], title: str) -> str:
    """A standalone page: inline CSS, no scripts, only the card's relative PNG files as external resources."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def render_model_card(card: dict, evaluation: dict, lineage: list[dict],
                      figure_src: Callable[[str], str] | None = None) -> tuple[str, str]:
    """(Markdown, HTML) model card of one registry version for model-risk review. Figures link to their PNG files
    beside the card, or to what `figure_src` makes of each file name (a data URI, for the UI's metadata)."""
    blocks = build_blocks(card, evaluation, lineage)
    if figure_src is not None:
        blocks = [Figure(figure_src(b.src), b.alt) if isinstance(b, Figure) else b for b in blocks]
    title = f"Model card: churn model {card.get('version', 'unknown')}"
    return render_markdown(blocks), render_html(blocks, title)
