"""Model card rendering: sections, ordering, formatting, escaping and graceful gaps in Markdown and HTML."""

from __future__ import annotations

import html
import re

import pytest

from assets.modeling.model_card import SECTION_TITLES, render_model_card

EVIL = "<script>alert(1)</script>"
PLOTS = {"roc": "roc.png", "precision_recall": "pr.png", "reliability": "reliability.png", "gains": "gains.png",
         "importance": "importance.png"}


def _metrics(auc: float, ece: float, lift: float) -> dict:
    return {"auc": auc, "pr_auc": auc - 0.41, "log_loss": 0.4123456, "brier": 0.1298765, "ece": ece,
            "lift_at_10": lift, "base_rate": 0.2412345, "rows": 48210}


def _card() -> dict:
    weeks = [f"2024-0{m}-0{d}" for m in range(1, 10) for d in (1, 8)]
    return {
        "version": "20241002T081500-3f9a1c",
        "created_at": "2024-10-02T08:15:00+00:00",
        "status": "challenger",
        "trainer_code_version": "1.4.2+g3f9a1c",
        "dbt_manifest_hash": "sha256:9b1f0c77e2",
        "features": ["recency_days", "frequency_90d", "monetary_90d", "bgnbd_p_alive", EVIL],
        "params": {"objective": "binary", "learning_rate": 0.05, "num_leaves": 63, "min_data_in_leaf": 200},
        "best_iteration": 412,
        "label_horizon_days": 90,
        "split": {"train": weeks[:12], "early_stopping": weeks[12:14], "calibration": weeks[14:16],
                  "validation": weeks[16:]},
        "training_inputs": {"gold/customer_features": 17, "gold/churn_labels": 9},
        "excluded_sensitive": ["gender", "birth_year"],
    }


def _evaluation() -> dict:
    return {
        "metrics": {
            "rfm_heuristic": _metrics(0.6712349, 0.1834, 1.9),
            "lightgbm_raw": _metrics(0.8031449, 0.0412, 3.1),
            "bgnbd": _metrics(0.7011, 0.0922, 2.2),
            "lightgbm_calibrated": _metrics(0.81234567, 0.0123456, 3.12345),
            "logistic_regression": _metrics(0.7655, 0.0231, 2.7),
        },
        "oracle_auc": 0.8712345,
        "normalised_auc": 0.8414321,
        "calibration": {
            "method": "platt", "ece_before": 0.0412, "ece_after": 0.0123456,
            "selection": [
                {"method": "platt", "log_loss": 0.4101, "brier": 0.1291, "ece": 0.0123456, "chosen": True},
                {"method": "isotonic", "log_loss": 0.4109, "brier": 0.1293, "ece": 0.0141, "chosen": False},
            ],
        },
        "gains": [
            {"decile": d, "rows": 4821, "churners": c, "churn_rate": c / 4821, "lift": c / 4821 / 0.2412345,
             "cumulative_gain": g, "cumulative_lift": g * 10 / d}
            for d, c, g in [(1, 3630, 0.3121), (2, 2466, 0.5242), (3, 1714, 0.6716)]
        ],
        "ablation": [
            {"group": "recency", "features": ["recency_days"], "auc": 0.7901, "auc_delta": -0.0222},
            {"group": "bgnbd", "features": ["bgnbd_p_alive"], "auc": 0.8119, "auc_delta": -0.0004},
        ],
        "bgnbd_feature": {"auc_with": 0.8123, "auc_without": 0.8119, "kept": True},
        "fairness": {
            "threshold": 0.4871234,
            "top_fraction": 0.1,
            "summary": {
                "age_band": {"equal_opportunity_difference": 0.0612, "selection_rate_ratio": 0.8421,
                             "auc_gap": 0.0311, "groups_compared": ["25-34", "35-44", "45-54"]},
                "region": {"equal_opportunity_difference": None, "selection_rate_ratio": None, "auc_gap": None,
                           "groups_compared": []},
            },
            "per_group": {
                "age_band": [
                    {"group": "25-34", "rows": 12000, "churners": 3100, "auc": 0.8011, "tpr": 0.3312, "fpr": 0.0612,
                     "selection_rate": 0.1012},
                    {"group": "<25", "rows": 12, "churners": 4, "auc": None, "tpr": 0.25, "fpr": 0.125,
                     "selection_rate": 0.1667},
                ],
            },
            "violations": ["region: selection rate ratio 0.700 is below 0.800 ('north' selected least)"],
        },
        "importance": {f"f{i:02d}": float(100 - i) for i in range(20)} | {EVIL: 1000.0},
        "plots": dict(PLOTS),
        "tuning": {"best_score": 0.8051234, "default_score": 0.7981234, "n_trials_completed": 40,
                   "stopped_by": "n_trials", "imbalance": "none"},
        "gate": {"decision": "rejected", "reasons": ["fairness violation on <b>region</b>"],
                 "champion_version": "20240901T070000-aa11bb"},
    }


def _lineage() -> list[dict]:
    return [
        {"version": "20240901T070000-aa11bb", "created_at": "2024-09-01T07:00:00+00:00", "status": "champion",
         "promoted_by": "gate", "auc": 0.8051, "ece": 0.0131},
        {"version": "20241002T081500-3f9a1c", "created_at": "2024-10-02T08:15:00+00:00", "status": "challenger",
         "promoted_by": None, "auc": 0.81234567, "ece": 0.0123456},
    ]


def _minimal_evaluation() -> dict:
    return {
        "metrics": {"lightgbm_calibrated": _metrics(0.7712, 0.02, 2.5)},
        "oracle_auc": None,
        "normalised_auc": None,
        "fairness": {"threshold": 0.5, "top_fraction": 0.1, "summary": {}, "per_group": {}, "violations": []},
        "tuning": {},
        "gate": {},
    }


@pytest.fixture(scope="module")
def rendered() -> tuple[str, str]:
    return render_model_card(_card(), _evaluation(), _lineage())


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end)]


def test_title_and_every_section_in_both_outputs(rendered):
    md, page = rendered
    assert md.startswith("# Model card: churn model 20241002T081500-3f9a1c (challenger)\n")
    assert "<h1>Model card: churn model 20241002T081500-3f9a1c (challenger)</h1>" in page
    md_positions = [md.index(f"\n## {title}\n") for title in SECTION_TITLES]
    html_positions = [page.index(f"<h2>{html.escape(title)}</h2>") for title in SECTION_TITLES]
    assert md_positions == sorted(md_positions)
    assert html_positions == sorted(html_positions)


def test_html_is_a_standalone_page(rendered):
    _, page = rendered
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page and '<meta charset="utf-8">' in page
    assert "<link" not in page and "http://" not in page and "https://" not in page


def test_metrics_table_sorted_by_descending_auc(rendered):
    expected = ["LightGBM (calibrated)", "LightGBM (uncalibrated)", "Logistic regression", "BG/NBD", "RFM heuristic"]
    md, page = rendered
    md_part = _section(md, "## Performance out of time", "## Calibration")
    rows = [line for line in md_part.splitlines() if line.startswith("| ") and line[2:5] not in ("Mod", "---")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == expected
    html_part = _section(page, "<h2>Performance out of time</h2>", "<h2>Calibration</h2>")
    positions = [html_part.index(f"<td>{label}</td>") for label in expected]
    assert positions == sorted(positions)


def test_values_are_formatted(rendered):
    md, page = rendered
    for text in (md, page):
        assert "0.81234567" not in text and "0.6712349" not in text
        assert "0.8123" in text and "0.6712" in text
        assert "Oracle AUC" in text and "0.8712" in text and "0.8414" in text
        assert "0.0412 → 0.0123" in text  # ECE before → after
        assert "0.4871" in text and "top 10%" in text  # fairness threshold
        assert "-0.0222" in text and "+0.0004" in text  # ablation delta, BG/NBD with - without
        assert "+0.0070" in text  # tuning improvement
        assert "48,210" in text
    # Training window: first and last snapshot date and the count.
    assert "| Training | 2024-01-01 | 2024-06-08 | 12 |" in md
    assert "<td>Validation (out of time)</td><td>2024-09-01</td><td>2024-09-08</td>" in page
    assert "| `gold/customer_features` | 17 |" in md


def test_html_and_markdown_escape_values(rendered):
    md, page = rendered
    assert EVIL not in page and "<b>" not in page
    assert html.escape(EVIL) in page
    assert "fairness violation on &lt;b&gt;region&lt;/b&gt;" in page
    assert f"`{EVIL}`" in md  # identifiers are code spans, which Markdown never turns into HTML
    assert "fairness violation on \\<b\\>region\\</b\\>" in md


def test_markdown_table_cells_survive_pipes():
    card, evaluation = _card(), _evaluation()
    evaluation["ablation"] = [{"group": "a|b", "features": ["x|y"], "auc": 0.7, "auc_delta": -0.1}]
    md, _ = render_model_card(card, evaluation, _lineage())
    part = _section(md, "## Feature-group ablation", "### BG/NBD feature decision")
    lines = [line for line in part.splitlines() if line.startswith("|")]
    unescaped = [len(re.findall(r"(?<!\\)\|", line)) for line in lines]
    assert len(lines) == 3 and len(set(unescaped)) == 1


def test_importance_lists_top_15_by_gain(rendered):
    md, _ = rendered
    part = _section(md, "## Global importance", "## Fairness")
    rows = [line for line in part.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 15
    assert rows[0].startswith(f"| 1 | `{EVIL}` |") and "`f00`" in rows[1] and "`f13`" in rows[-1]
    assert "Top 15 of 21 features" in part


def test_fairness_details(rendered):
    md, page = rendered
    part = _section(md, "## Fairness", "## Tuning")
    assert "| `age_band` | 0.0612 | 0.8421 | 0.0311 | `25-34`, `35-44`, `45-54` |" in part
    assert "| `region` | n/a | n/a | n/a | none |" in part
    assert "### Groups by age\\_band" in part and "| \\<25 | 12 | 4 | n/a |" in part
    assert "- region: selection rate ratio 0.700" in part
    assert "<h3>Groups by age_band</h3>" in page and "<td>&lt;25</td>" in page


def test_gate_tuning_and_lineage(rendered):
    md, _ = rendered
    assert "Decision: rejected (compared against champion 20240901T070000-aa11bb)." in md
    assert "| Trials completed | 40 |" in md and "| `learning_rate` | `0.05` |" in md
    assert "best iteration 412" in md
    assert "| 20241002T081500-3f9a1c (this card) | 2024-10-02T08:15:00+00:00 | challenger | — | 0.8123 | 0.0123 |" in md
    assert "Synthetic data" in md  # oracle figures exist


def test_html_references_plot_files(rendered):
    md, page = rendered
    for name in PLOTS.values():
        assert f'<img src="{name}"' in page
        assert f"]({name})" in md


def test_the_ui_copy_carries_its_figures_inline(tmp_path):
    """The UI's copy of the card (its Markdown metadata) shows each figure as a data URI: the browser showing it
    cannot read the files beside the card."""
    from assets.markdown import png_data_uri

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(16))
    for name in PLOTS.values():
        (tmp_path / name).write_bytes(png)
    md, _ = render_model_card(_card(), _evaluation(), _lineage(),
                              figure_src=lambda name: png_data_uri(tmp_path / name))
    assert png_data_uri(tmp_path / PLOTS["roc"]) == "data:image/png;base64,iVBORw0KGgoAAQIDBAUGBwgJCgsMDQ4P"
    for name in PLOTS.values():
        assert f"]({name})" not in md
    assert md.count("](data:image/png;base64,iVBORw0KGgo") == len(PLOTS)


def test_unsafe_or_missing_plot_is_not_referenced():
    evaluation = _evaluation()
    evaluation["plots"] = {"roc": "https://example.com/roc.png", "gains": "../../etc/gains.png",
                           "reliability": 'x" onerror="alert(1).png'}
    md, page = render_model_card(_card(), evaluation, _lineage())
    assert "<img" not in page and "example.com" not in page and "onerror" not in page
    for text in (md, page):
        for sentence in ("ROC curve: not available.", "Cumulative gains chart: not available.",
                         "Reliability plot: not available.", "Feature importance chart: not available."):
            assert sentence in text


def test_minimal_evaluation_renders_not_available_sentences():
    md, page = render_model_card(_card(), _minimal_evaluation(), [])
    for text in (md, page):
        assert "Oracle and normalised AUC: not available" in text
        assert "BG/NBD baseline: not available" in text
        assert "BG/NBD feature decision: not available." in text
        assert "Fairness summary: not available" in text
        assert "Violations of the release limits: none." in text
        assert "Tuning results: not available" in text
        assert "decision: not available" in text
        assert "Calibration details: not available." in text
        assert "Gains table: not available." in text
        assert "Feature importance: not available." in text
        assert "Version lineage: not available." in text
        assert "Synthetic data" not in text
    for title in SECTION_TITLES:
        assert f"## {title}" in md


def test_empty_inputs_do_not_crash():
    md, page = render_model_card({}, {}, [])
    assert "Out-of-time metrics: not available." in md
    assert "Fairness assessment: not available." in page
    assert "Feature list: not available." in md


def test_markdown_values_cannot_inject_markup():
    markdown_it = pytest.importorskip("markdown_it")
    evaluation = _evaluation()
    evaluation["gate"] = {"decision": "rejected", "reasons": ["- nested?", "1. numbered?", f"raw {EVIL}"],
                          "champion_version": None}
    md, _ = render_model_card(_card(), evaluation, _lineage())
    assert "- \\- nested?" in md and "- 1\\. numbered?" in md
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    assert "<script>" not in rendered and html.escape(EVIL) in rendered
    assert "no champion existed to compare against" in md
    part = _section(rendered, "<h2>Champion–challenger decision</h2>", "<h2>Limitations</h2>")
    assert part.count("<li>") == 3 and "<ol" not in part and part.count("<ul>") == 1
    assert rendered.count('<img src="') == len(PLOTS)


def test_a_skipped_search_says_why_instead_of_showing_scores():
    evaluation = {**_evaluation(), "tuning": {"skipped": "not one rolling-origin fold fits the labelled history"}}
    md, page = render_model_card(_card(), evaluation, _lineage())
    part = md[md.index("## Tuning"):]
    assert "Not tuned; trained with the default parameters: not one rolling-origin fold fits" in part
    assert "Best AUC" not in part and "Not tuned" in page
