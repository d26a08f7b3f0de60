"""Tests of the synthetic landing generator: determinism, contract conformance, scale, bad rows, ground truth."""

from __future__ import annotations

import json
import re
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from domain.contract import EMAIL_PATTERN, SOURCES
from domain.synthetic import (
    BAD_KINDS,
    MARKER_FILE,
    GenerationSummary,
    SyntheticConfig,
    config_for_size,
    extend_world,
    generate,
    landed_until,
    snapshot_dates,
    world_config,
)

SNAPSHOT = date(2025, 1, 6)  # mid-period Monday with a full 90-day label window after it


class Run:
    def __init__(self, config: SyntheticConfig, root: Path) -> None:
        self.config = config
        self.landing = root / "landing"
        self.truth = root / "ground_truth"
        self.summary: GenerationSummary = generate(config, self.landing, self.truth)
        self._cache: dict[str, pl.DataFrame] = {}

    def files(self, source: str) -> list[Path]:
        return sorted((self.landing / source).glob("date=*/*.parquet"))

    def read(self, source: str) -> pl.DataFrame:
        """All rows of a source with the landing day from the folder name (contract columns only)."""
        if source in self._cache:
            return self._cache[source]
        frames = [
            pl.read_parquet(f, columns=SOURCES[source].column_names).with_columns(
                pl.lit(date.fromisoformat(f.parent.name.removeprefix("date="))).alias("date")
            )
            for f in self.files(source)
        ]
        self._cache[source] = pl.concat(frames)
        return self._cache[source]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(config_for_size("tiny"), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(config_for_size("small"), tmp_path_factory.mktemp("small"))


def good_orders(run: Run) -> pl.DataFrame:
    """Orders without the deliberate defects, as ingestion should keep them."""
    return (
        run.read("orders")
        .filter(
            pl.col("customer_id").is_not_null()
            & (pl.col("amount") > 0)
            & (pl.col("order_ts").dt.date() == pl.col("date"))
        )
        .unique("order_id", keep="first", maintain_order=True)
    )


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    ranks = pl.Series(score).rank("average").to_numpy()
    n_pos = int(positive.sum())
    n_neg = positive.shape[0] - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_snapshot_dates_are_mondays_in_range() -> None:
    dates = snapshot_dates(date(2024, 7, 3), date(2024, 8, 5))
    assert dates == [date(2024, 7, 8), date(2024, 7, 15), date(2024, 7, 22), date(2024, 7, 29)]
    config = config_for_size("demo", seed=3)
    assert (config.n_customers, config.seed, config.start, config.end) == (
        20_000,
        3,
        date(2024, 1, 1),
        date(2026, 1, 1),
    )
    assert config_for_size("tiny", end=None).end == date(2026, 1, 1)  # unset settings fall back to defaults
    with pytest.raises(ValueError):
        config_for_size("huge")


def test_same_seed_same_data_and_other_seed_differs(tmp_path: Path) -> None:
    config = config_for_size("tiny", end=date(2024, 4, 1), snapshot_start=date(2024, 2, 5))
    runs = [Run(config, tmp_path / "a"), Run(config, tmp_path / "b"), Run(replace(config, seed=8), tmp_path / "c")]
    for source in SOURCES:
        assert [f.relative_to(runs[0].landing) for f in runs[0].files(source)] == [
            f.relative_to(runs[1].landing) for f in runs[1].files(source)
        ]
        for f in runs[0].files(source):
            assert pl.read_parquet(f).equals(pl.read_parquet(runs[1].landing / f.relative_to(runs[0].landing)))
    truth = [pl.read_parquet(r.truth / "churn_probability.parquet") for r in runs]
    assert truth[0].equals(truth[1])
    assert runs[0].summary.rows == runs[1].summary.rows
    assert not runs[0].read("orders").equals(runs[2].read("orders"))
    assert not truth[0].equals(truth[2])


def test_files_follow_the_contract(tiny: Run) -> None:
    extra_from = tiny.config.extra_from
    for name, spec in SOURCES.items():
        files = tiny.files(name)
        assert files, name
        for f in files:
            assert re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", f.parent.name) and f.name.endswith(".parquet")
            schema = dict(pl.read_parquet_schema(f))
            expected = dict(spec.polars_schema)
            if name == "orders" and date.fromisoformat(f.parent.name[5:]) >= extra_from:
                expected["coupon_code"] = pl.Utf8
            assert schema == expected, f
            assert list(schema) == list(expected), f
    orders = good_orders(tiny)
    assert orders["order_id"].str.starts_with("O").all() and (orders["n_items"] >= 1).all()
    assert set(orders["channel"].unique()) <= {"web", "app", "store"}
    events = tiny.read("events").drop_nulls("event_id")
    assert events["event_id"].is_unique().all()
    assert (events["event_ts"].dt.date() == events["date"]).all()
    assert set(events["event_type"].unique()) == set(SOURCES["events"].column("event_type").allowed)
    assert 0.7 < events["customer_id"].is_not_null().mean() < 0.9
    assert (
        events.drop_nulls("customer_id").group_by("customer_id").agg(pl.col("device_id").n_unique())["device_id"].max()
        == 1
    )
    customers = tiny.read("customers")
    assert customers.height == tiny.config.n_customers and customers["customer_id"].is_unique().all()
    assert customers["customer_id"][0] == "C0000001"
    base = customers.filter(pl.col("signup_ts").dt.date() < tiny.config.start)
    assert (base["date"] == tiny.config.start).all() and 0.5 < base.height / customers.height < 0.7
    assert (
        customers.filter(pl.col("signup_ts").dt.date() >= tiny.config.start).select(
            (pl.col("signup_ts").dt.date() == pl.col("date")).all()
        )
    ).item()
    consents = tiny.read("consents")
    assert (consents["event_ts"].dt.date() == consents["date"]).all()
    assert 2.0 <= consents.height / customers.height < 3.0


def test_small_has_about_ten_times_the_orders_of_tiny(tiny: Run, small: Run) -> None:
    ratio = small.summary.rows["orders"] / tiny.summary.rows["orders"]
    assert 7 < ratio < 14
    per_customer = small.summary.rows["orders"] / small.config.n_customers
    assert 14 < per_customer < 27
    assert 1.2 < small.summary.rows["events"] / small.summary.rows["orders"] < 1.9


def test_bad_rows_are_in_the_files_as_counted(tiny: Run) -> None:
    bad = tiny.summary.bad_rows
    assert set(bad) == set(BAD_KINDS) and all(n > 0 for kinds in bad.values() for n in kinds.values())
    orders = tiny.read("orders")
    assert orders["customer_id"].null_count() == bad["orders"]["null_key"]
    assert (orders["amount"] < 0).sum() == bad["orders"]["negative_amount"]
    assert (orders["order_ts"].dt.date() != orders["date"]).sum() == bad["orders"]["future_timestamp"]
    assert orders.height - orders["order_id"].n_unique() == bad["orders"]["duplicate_id"]
    dupes = orders.filter(pl.col("order_id").is_duplicated())
    assert dupes.unique().height == dupes.height // 2  # exact copies, in the same day's file
    events = tiny.read("events")
    assert events["event_id"].null_count() == bad["events"]["null_key"]
    emails = tiny.read("customers")["email"]
    assert (~emails.str.contains(EMAIL_PATTERN)).sum() == bad["customers"]["malformed_email"]
    table = pl.read_parquet(tiny.truth / "bad_rows.parquet")
    assert {(r["source"], r["kind"]): r["n_rows"] for r in table.to_dicts()} == {
        (s, k): n for s, kinds in bad.items() for k, n in kinds.items()
    }
    assert tiny.summary.rows["orders"] == orders.height


def test_ground_truth_is_apart_and_covers_snapshots(tiny: Run) -> None:
    assert not tiny.truth.is_relative_to(tiny.landing)
    assert {p.name for p in tiny.landing.iterdir()} == set(SOURCES) | {MARKER_FILE}
    truth = pl.read_parquet(tiny.truth / "churn_probability.parquet")
    assert dict(truth.schema) == {"customer_id": pl.Utf8, "snapshot_date": pl.Date, "p_churn": pl.Float64}
    expected = snapshot_dates(tiny.config.snapshot_start, tiny.config.end)
    assert sorted(truth["snapshot_date"].unique()) == expected
    assert truth["p_churn"].is_between(0.0, 1.0).all()
    signups = tiny.read("customers").select("customer_id", "signup_ts")
    for snapshot in (expected[0], expected[-1]):
        at = truth.filter(pl.col("snapshot_date") == snapshot)
        eligible = signups.filter(pl.col("signup_ts").dt.date() < snapshot)  # no signup at exactly midnight
        assert set(at["customer_id"]) == set(eligible["customer_id"])
    meta = json.loads((tiny.truth / "generation.json").read_text())
    assert meta["rows"] == tiny.summary.rows
    assert meta["extra_column"] == {"source": "orders", "column": "coupon_code", "from": "2024-12-31"}


def test_campaign_touches_respect_control_and_consent(tiny: Run) -> None:
    touches = tiny.read("campaign_touches")
    assert (touches["sent_ts"].dt.date() == touches["date"]).all()
    control = touches.filter("is_control")
    assert 0.05 < control.height / touches.height < 0.15
    assert control["opened_ts"].null_count() == control.height and control["clicked_ts"].null_count() == control.height
    assert (touches.drop_nulls("opened_ts").select((pl.col("opened_ts") > pl.col("sent_ts")).all())).item()
    assert (touches.drop_nulls("clicked_ts").select((pl.col("clicked_ts") >= pl.col("opened_ts")).all())).item()
    consent = tiny.read("consents").filter(pl.col("purpose") == "marketing").sort("event_ts")
    at_send = touches.sort("sent_ts").join_asof(
        consent.select("customer_id", "event_ts", "granted"),
        left_on="sent_ts",
        right_on="event_ts",
        by="customer_id",
        check_sortedness=False,  # both sides are sorted by time; polars cannot verify that within groups
    )
    assert at_send["granted"].fill_null(False).all()


def test_oracle_beats_recency_and_both_carry_signal(small: Run) -> None:
    horizon = timedelta(days=small.config.label_horizon_days)
    orders = good_orders(small).select("customer_id", "order_ts")
    t = pl.lit(SNAPSHOT).cast(pl.Datetime("us", "UTC"))
    last = orders.filter(pl.col("order_ts") < t).group_by("customer_id").agg(pl.col("order_ts").max().alias("last"))
    bought = orders.filter(pl.col("order_ts").is_between(t, t + horizon, closed="left"))["customer_id"].unique()
    truth = pl.read_parquet(small.truth / "churn_probability.parquet").filter(pl.col("snapshot_date") == SNAPSHOT)
    frame = last.join(truth, on="customer_id", how="inner").with_columns(
        (~pl.col("customer_id").is_in(bought.implode())).alias("churned"),
        (t - pl.col("last")).dt.total_days().alias("recency"),
    )
    assert frame.height > 0.4 * small.config.n_customers
    churned = frame["churned"].to_numpy()
    assert 0.2 < churned.mean() < 0.45
    oracle_auc = auc(frame["p_churn"].to_numpy(), churned)
    recency_auc = auc(frame["recency"].to_numpy().astype(float), churned)
    print(f"churn share {churned.mean():.3f} oracle AUC {oracle_auc:.3f} recency AUC {recency_auc:.3f}")
    assert oracle_auc > 0.75
    assert 0.6 < recency_auc < oracle_auc
    assert abs(frame["p_churn"].mean() - churned.mean()) < 0.05  # the oracle is calibrated


def test_help_centre_visits_and_unsubscribes_reveal_who_is_leaving(small: Run) -> None:
    """Support visits and unsubscribes are the generator's observable traces of low satisfaction and of leaving."""
    t = pl.lit(SNAPSHOT).cast(pl.Datetime("us", "UTC"))
    window = (t - timedelta(days=90), t)
    recent = small.read("events").filter(pl.col("event_ts").is_between(*window, closed="left"))
    mix = recent.filter(pl.col("customer_id").is_not_null()).group_by("customer_id").agg(
        (pl.col("event_type") == "support").mean().alias("support_share")
    )
    truth = pl.read_parquet(small.truth / "churn_probability.parquet").filter(pl.col("snapshot_date") == SNAPSHOT)
    frame = mix.join(truth, on="customer_id")
    high = frame.filter(pl.col("p_churn") >= frame["p_churn"].quantile(0.75))["support_share"].mean()
    low = frame.filter(pl.col("p_churn") <= frame["p_churn"].quantile(0.25))["support_share"].mean()
    assert high > 3 * low > 0, (low, high)  # customers likelier to churn spend more of their visits on help pages

    # Unsubscribes (granted -> withdrawn) concentrate on customers already gone by the next snapshot.
    consents = small.read("consents").filter(pl.col("purpose") == "marketing").sort("customer_id", "event_ts")
    withdrawals = consents.filter(
        ~pl.col("granted") & pl.col("granted").shift(1).over("customer_id")
        & pl.col("event_ts").is_between(*window, closed="left")
    )["customer_id"].unique()
    gone = truth.filter(pl.col("p_churn") == 1.0)["customer_id"]
    dead_share_among_unsubscribers = withdrawals.is_in(gone.implode()).mean()
    assert dead_share_among_unsubscribers > 1.3 * (gone.len() / truth.height), dead_share_among_unsubscribers


ONSET = date(2025, 3, 3)
ONSET_TS = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def drift_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, Run]:
    """The tiny world without drift and with each scenario, same seed."""
    runs = {}
    for kind in (None, "price_level", "new_channel", "churn_process", "broken_field"):
        config = config_for_size("tiny", drift_kind=kind, drift_onset=ONSET if kind else None)
        runs[kind] = Run(config, tmp_path_factory.mktemp(f"drift_{kind}"))
    return runs


def _good_orders(run: Run) -> pl.DataFrame:
    return good_orders(run).sort("order_id")


def test_price_level_drift_raises_amounts_from_the_onset_only(drift_runs):
    base, drifted = _good_orders(drift_runs[None]), _good_orders(drift_runs["price_level"])
    assert base.get_column("order_id").equals(drifted.get_column("order_id"))  # the same orders, other prices
    after = base.get_column("order_ts") >= ONSET_TS
    ratio = (drifted.filter(after)["amount"] / base.filter(after)["amount"]).to_numpy()
    assert np.allclose(ratio, 1.25, atol=0.01)
    assert drifted.filter(~after)["amount"].equals(base.filter(~after)["amount"])


def test_new_channel_and_broken_field_start_at_the_onset(drift_runs):
    channel = _good_orders(drift_runs["new_channel"])
    after = channel.get_column("order_ts") >= ONSET_TS
    share = (channel.filter(after)["channel"] == "marketplace").mean()
    assert 0.25 < share < 0.35 and (channel.filter(~after)["channel"] == "marketplace").sum() == 0
    broken = _good_orders(drift_runs["broken_field"])
    after = broken.get_column("order_ts") >= ONSET_TS
    assert broken.filter(after)["n_items"].null_count() == broken.filter(after).height > 0
    assert broken.filter(~after)["n_items"].null_count() == 0


def test_churn_process_drift_moves_the_oracle_and_is_recorded(drift_runs):
    def mean_p(run: Run, when: str) -> float:
        truth = pl.read_parquet(run.truth / "churn_probability.parquet")
        cut = pl.col("snapshot_date") >= ONSET
        return truth.filter(cut if when == "after" else ~cut)["p_churn"].mean()

    base, drifted = drift_runs[None], drift_runs["churn_process"]
    assert mean_p(drifted, "after") > mean_p(base, "after") + 0.05
    assert mean_p(drifted, "before") < mean_p(base, "before") + 0.05  # before the onset only horizons reach it
    meta = json.loads((drifted.truth / "generation.json").read_text())
    assert (meta["config"]["drift_kind"], meta["config"]["drift_onset"]) == ("churn_process", ONSET.isoformat())
    assert meta["drift"]["competitor_country"] == "GB"


def test_churn_process_drift_hits_the_home_market_only(drift_runs):
    def after_onset(run: Run) -> pl.DataFrame:
        country = pl.read_parquet(run.landing / "customers" / "*" / "*.parquet").select("customer_id", "country")
        truth = pl.read_parquet(run.truth / "churn_probability.parquet").filter(pl.col("snapshot_date") >= ONSET)
        orders = good_orders(run).filter(pl.col("order_ts") >= ONSET_TS).group_by("customer_id").len("orders")
        return (truth.join(country, on="customer_id")
                .with_columns((pl.col("country") == "GB").alias("home")).group_by("home")
                .agg(pl.col("p_churn").mean(), pl.col("customer_id").unique().len().alias("customers"))
                .join(orders.join(country, on="customer_id").with_columns((pl.col("country") == "GB").alias("home"))
                      .group_by("home").agg(pl.col("orders").sum()), on="home"))

    base = after_onset(drift_runs[None]).sort("home")
    drifted = after_onset(drift_runs["churn_process"]).sort("home")
    abroad, home = (drifted.row(k, named=True) for k in range(2))
    abroad_base, home_base = (base.row(k, named=True) for k in range(2))
    assert home["p_churn"] > home_base["p_churn"] + 0.05
    assert abs(abroad["p_churn"] - abroad_base["p_churn"]) < 0.02
    assert home["orders"] < 0.6 * home_base["orders"]  # fewer buy, and those who stay buy 0.3x as often
    assert abroad["orders"] > 0.8 * abroad_base["orders"]


def test_a_denser_clickstream_triples_events_and_leaves_orders_and_truth_alone(tmp_path: Path) -> None:
    config = config_for_size("tiny", end=date(2024, 7, 1), snapshot_start=date(2024, 3, 4))
    sparse = Run(config, tmp_path / "sparse")
    dense = Run(replace(config, events_per_week=3 * config.events_per_week), tmp_path / "dense")
    assert 2.6 < dense.summary.rows["events"] / sparse.summary.rows["events"] < 3.4
    # events draw from their own random stream and do not feed back into the latent state
    assert dense.read("orders").equals(sparse.read("orders"))
    truth = [pl.read_parquet(r.truth / "churn_probability.parquet") for r in (sparse, dense)]
    assert truth[0].equals(truth[1])
    meta = json.loads((dense.truth / "generation.json").read_text())
    assert meta["config"]["events_per_week"] == pytest.approx(3 * config.events_per_week)
    with pytest.raises(ValueError, match="events_per_week must be positive"):
        replace(config, events_per_week=0.0)


def test_a_planted_gender_dependence_raises_womens_churn_only(tmp_path: Path) -> None:
    config = config_for_size("tiny", end=date(2024, 7, 1), snapshot_start=date(2024, 3, 4))
    plain = Run(config, tmp_path / "plain")
    planted = Run(replace(config, gender_hazard_shift=1.5), tmp_path / "planted")
    # the same people (the shift draws nothing of its own); who leaves when, and so what follows, differs
    assert planted.read("customers").equals(plain.read("customers"))
    women = plain.read("customers").filter(pl.col("gender") == "f").get_column("customer_id").unique()

    def truth(run: Run) -> pl.DataFrame:
        first = pl.read_parquet(run.truth / "churn_probability.parquet").filter(
            pl.col("snapshot_date") == pl.col("snapshot_date").min())
        return first.with_columns(pl.col("customer_id").is_in(women.implode()).alias("woman")).sort("customer_id")

    before, after = truth(plain), truth(planted)
    woman = before.get_column("woman").to_numpy()
    rise = after.get_column("p_churn").to_numpy() - before.get_column("p_churn").to_numpy()
    assert rise[woman].mean() > 0.1 and abs(rise[~woman].mean()) < 0.02, (rise[woman].mean(), rise[~woman].mean())
    meta = json.loads((planted.truth / "generation.json").read_text())
    assert meta["config"]["gender_hazard_shift"] == 1.5


def test_a_drift_needs_a_known_kind_and_an_onset():
    with pytest.raises(ValueError, match="go together"):
        config_for_size("tiny", drift_kind="price_level")
    with pytest.raises(ValueError, match="unknown drift_kind"):
        config_for_size("tiny", drift_kind="alien_invasion", drift_onset=ONSET)


# --- landing a world a piece at a time; never deleting what the generator did not write ---

PIECE_CONFIG = config_for_size("tiny", end=date(2024, 5, 6), snapshot_start=date(2024, 2, 5))
CUT = date(2024, 2, 14)  # a Wednesday: the week it falls in is written partly by each piece
assert CUT.weekday() == 2


def _contents(folder: Path) -> dict[Path, bytes]:
    """Every file under a folder (hidden ones included) with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _parquet_frames(folder: Path) -> dict[Path, pl.DataFrame]:
    return {p.relative_to(folder): pl.read_parquet(p) for p in sorted(folder.rglob("*.parquet"))}


def _generation_meta(truth: Path) -> dict:
    meta = json.loads((truth / "generation.json").read_text())
    return {key: value for key, value in meta.items() if key not in ("generated_at", "seconds")}


def _added(*summaries: GenerationSummary) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    rows = {source: sum(s.rows[source] for s in summaries) for source in SOURCES}
    bad = {source: {kind: sum(s.bad_rows[source][kind] for s in summaries) for kind in kinds}
           for source, kinds in BAD_KINDS.items()}
    return rows, bad


@pytest.mark.parametrize(
    ("drift_kind", "until"),
    [(None, date(2024, 4, 11)), ("churn_process", PIECE_CONFIG.end)],  # a Thursday; the world's horizon
)
def test_landing_in_pieces_gives_the_files_of_landing_at_once(tmp_path: Path, drift_kind: str | None,
                                                                until: date) -> None:
    config = replace(PIECE_CONFIG, drift_kind=drift_kind, drift_onset=date(2024, 3, 4) if drift_kind else None)
    once = generate(config, tmp_path / "once" / "landing", tmp_path / "once" / "truth", land_until=until)
    pieces = tmp_path / "pieces"
    first = generate(config, pieces / "landing", pieces / "truth", land_until=CUT)
    days = {f.parent.name for f in (pieces / "landing").rglob("*.parquet")}
    assert max(days) < f"date={CUT}" and f"date={CUT - timedelta(days=1)}" in days  # up to the cut, not beyond
    second = extend_world(pieces / "landing", pieces / "truth", until)

    frames = _parquet_frames(tmp_path / "once")
    assert set(frames) == set(_parquet_frames(pieces))  # same day folders and ground-truth files
    assert len(frames) > 300
    for path, frame in _parquet_frames(pieces).items():
        assert frame.equals(frames[path]), path  # same rows, same values, same order
    assert _generation_meta(pieces / "truth") == _generation_meta(tmp_path / "once" / "truth")
    assert _added(first, second) == (once.rows, once.bad_rows)
    assert (first.land_from, first.land_until, second.land_from, second.land_until) == (
        config.start, CUT, CUT, until)
    assert landed_until(pieces / "landing") == until and world_config(pieces / "landing") == config


def test_the_marker_records_the_world_and_how_far_it_landed(tmp_path: Path) -> None:
    config = replace(PIECE_CONFIG, drift_kind="price_level", drift_onset=date(2024, 3, 4), events_per_week=0.5)
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    assert world_config(landing) is None and landed_until(landing) is None  # nothing there yet
    generate(config, landing, truth, land_until=CUT)
    marker = json.loads((landing / MARKER_FILE).read_text())
    assert set(marker) == {f.name for f in fields(SyntheticConfig)} | {"landed_until"}
    assert (marker["start"], marker["drift_onset"], marker["landed_until"]) == ("2024-01-01", "2024-03-04",
                                                                                  CUT.isoformat())
    assert marker["events_per_week"] == 0.5 and marker["extra_column_from"] is None
    assert world_config(landing) == config and landed_until(landing) == CUT
    assert json.loads((truth / "generation.json").read_text())["landed_until"] == CUT.isoformat()
    extend_world(landing, truth, date(2024, 3, 1))
    assert landed_until(landing) == date(2024, 3, 1)
    assert json.loads((truth / "generation.json").read_text())["landed_until"] == "2024-03-01"


def test_a_folder_without_the_marker_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    layouts = {
        "inside a source folder": ["orders/date=2024-01-02/part-00000.parquet"],  # looks like ours, is not
        "beside the source folders": ["notes.txt"],
        "both": ["customers/date=2024-01-01/export.csv", "README"],
    }
    for name, files in layouts.items():
        landing = tmp_path / name.replace(" ", "_") / "landing"
        for relative in files:
            (landing / relative).parent.mkdir(parents=True, exist_ok=True)
            (landing / relative).write_bytes(b"their own data " + relative.encode())
        before = _contents(landing)
        for land_from in (None, CUT):  # a full generation and an extension
            with pytest.raises(ValueError, match="holds files Assay did not create") as refused:
                generate(PIECE_CONFIG, landing, landing.parent / "truth", land_from=land_from)
            assert str(refused.value).startswith(str(landing)), name
            assert all(Path(f).name not in str(refused.value) for f in files), name  # no file names
        assert _contents(landing) == before, name  # byte for byte, nothing added
        assert not (landing.parent / "truth").exists(), name


def test_regeneration_removes_only_the_generators_own_files(tmp_path: Path) -> None:
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    generate(PIECE_CONFIG, landing, truth)
    (landing / "notes.txt").write_text("mine")
    (landing / "exports" / "orders").mkdir(parents=True)
    (landing / "exports" / "orders" / "part-00000.parquet").write_bytes(b"not the generator's")
    theirs = {p: b for p, b in _contents(landing).items() if p.parts[0] in ("notes.txt", "exports")}

    other = replace(PIECE_CONFIG, seed=8, end=date(2024, 4, 1))  # a different, shorter world
    generate(other, landing, truth)
    fresh = tmp_path / "fresh"
    generate(other, fresh / "landing", fresh / "truth")
    after = _contents(landing)
    assert {p: b for p, b in after.items() if p in theirs} == theirs  # kept byte for byte
    ours = {p: b for p, b in after.items() if p not in theirs}
    assert set(ours) == set(_contents(fresh / "landing"))  # the old world's days are all gone
    for path, frame in _parquet_frames(fresh / "landing").items():
        assert pl.read_parquet(landing / path).equals(frame), path

    # with the marker, a stranger's file inside a source folder still stops the regeneration before any deletion
    (landing / "orders" / "date=2024-01-03" / "their_export.csv").write_text("id\n1\n")
    before = _contents(landing)
    with pytest.raises(ValueError, match="holds files Assay did not create"):
        generate(other, landing, truth)
    assert _contents(landing) == before


def test_an_extension_beyond_the_horizon_is_refused(tmp_path: Path) -> None:
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    with pytest.raises(ValueError, match="no synthetic world to extend"):
        extend_world(landing, truth, CUT)
    generate(PIECE_CONFIG, landing, truth, land_until=CUT)
    before = _contents(landing)
    beyond = PIECE_CONFIG.end + timedelta(days=1)
    with pytest.raises(ValueError, match=r"beyond this world's horizon 2024-05-06.*assay generate --world-end"):
        extend_world(landing, truth, beyond)
    with pytest.raises(ValueError, match="beyond this world's horizon"):
        generate(PIECE_CONFIG, landing, truth, land_from=CUT, land_until=beyond)
    nothing = extend_world(landing, truth, CUT - timedelta(days=3))  # already landed: a no-op
    assert set(nothing.rows.values()) == {0} and nothing.land_from is None
    assert _contents(landing) == before and landed_until(landing) == CUT


def test_an_extension_never_overwrites_a_landed_day(tmp_path: Path) -> None:
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    until = date(2024, 3, 1)
    generate(PIECE_CONFIG, landing, truth, land_until=until)
    before = _contents(landing)
    with pytest.raises(ValueError, match="already holds day 2024-02-14; an extension never overwrites"):
        generate(PIECE_CONFIG, landing, truth, land_from=CUT, land_until=date(2024, 3, 8))
    with pytest.raises(ValueError, match="would leave a gap"):
        generate(PIECE_CONFIG, landing, truth, land_from=date(2024, 3, 4), land_until=date(2024, 3, 8))
    with pytest.raises(ValueError, match="another synthetic world"):
        generate(replace(PIECE_CONFIG, seed=8), landing, truth, land_from=until, land_until=date(2024, 3, 8))
    assert _contents(landing) == before and landed_until(landing) == until
