"""Pseudonymisation at ingestion: tokens from bronze on, contact details only in the pii_vault."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest
from dagster import AssetKey, materialize

from assets.ingestion.assets import build_ingestion_assets
from assets.ingestion.pseudonymise import protect_quarantined, pseudonymise_valid
from assets.partitions import AssayPartitions
from domain import pseudonym
from domain.contract import CUSTOMERS, EVENTS, VAULT_TABLE
from domain.pseudonym import (
    TOKEN_LENGTH,
    TokenCollision,
    Tokeniser,
    check_collisions,
    pseudonym_key,
    token,
    tokenise,
    tokens,
    with_tokens,
)
from domain.settings import AssaySettings
from resources.assay import AssayResource
from resources.lake import LakeResource

KEY = b"k" * 32
DAY = date(2024, 3, 1)
# the ingestion assets over the default daily partitions (not the caller's environment)
INGESTION = build_ingestion_assets(AssayPartitions.from_settings(AssaySettings.from_env({})))


def test_tokens_are_keyed_stable_and_short():
    values = pl.Series(["C1", "C2", None, "C1"])
    tokenised = tokenise(values, KEY)
    assert tokenised[0] == tokenised[3] == token(KEY, "C1") != tokenised[1]
    assert tokenised[2] is None
    assert {len(t) for t in tokenised.drop_nulls()} == {TOKEN_LENGTH}
    assert tokenise(values, b"another key")[0] != tokenised[0]  # without the key, a guessed id gives nothing


def test_tokens_of_many_values_at_once_are_each_values_token():
    values = ["C1", "", "-42", "2024", "é😀 x", "a" * 500, *(f"C{i:07d}" for i in range(1000))]
    assert tokens(KEY, values).to_list() == [token(KEY, v) for v in values]
    assert tokens(KEY, []).to_list() == []


def test_a_tokeniser_hashes_each_value_once_across_batches(monkeypatch):
    hashed = []
    monkeypatch.setattr(pseudonym, "tokens", lambda key, values: hashed.extend(values) or tokens(key, values))
    tokeniser = Tokeniser(KEY, hash_outright_below=0)  # every batch through the memory
    first = tokeniser(pl.Series("customer_id", ["C1", "C2", None]))
    second = tokeniser(pl.Series("device_id", ["C2", None, "C3", "C1", "C3"]))
    assert sorted(hashed) == ["C1", "C2", "C3"]
    assert first.name == "customer_id" and second.name == "device_id"
    assert first.to_list() == [token(KEY, "C1"), token(KEY, "C2"), None]
    assert second.to_list() == [token(KEY, "C2"), None, token(KEY, "C3"), token(KEY, "C1"), token(KEY, "C3")]
    assert tokeniser(pl.Series("x", [None, None], pl.Utf8)).to_list() == [None, None]


def test_a_small_batch_is_hashed_outright_with_the_same_tokens(monkeypatch):
    hashed = []
    monkeypatch.setattr(pseudonym, "tokens", lambda key, values: hashed.extend(values) or tokens(key, values))
    tokeniser = Tokeniser(KEY, hash_outright_below=4)
    big = tokeniser(pl.Series("customer_id", ["C1", "C2", None, "C1"]))  # 4 rows: through the memory
    small = tokeniser(pl.Series("customer_id", ["C2", None, "C3"]))  # 3 rows: hashed outright, C2 again
    again = tokeniser(pl.Series("customer_id", ["C3", "C2", "C3", "C3"]))  # C3 was not remembered from the small one
    assert sorted(hashed) == ["C1", "C2", "C2", "C3", "C3"]
    assert big.to_list() == [token(KEY, "C1"), token(KEY, "C2"), None, token(KEY, "C1")]
    assert small.to_list() == [token(KEY, "C2"), None, token(KEY, "C3")]
    assert again.to_list() == [token(KEY, v) for v in ["C3", "C2", "C3", "C3"]]


def test_with_tokens_rekeys_a_lazy_frame():
    truth = pl.LazyFrame({"customer_id": ["C1", "C2", "C1"], "p": [0.1, 0.2, 0.3]})
    rekeyed = with_tokens(truth, "customer_id", KEY).collect().sort("p")
    assert rekeyed.get_column("customer_id").to_list() == [token(KEY, "C1"), token(KEY, "C2"), token(KEY, "C1")]


def test_a_collision_is_refused():
    with pytest.raises(TokenCollision):
        check_collisions(pl.DataFrame({"t": ["a", "a"], "id": ["C1", "C2"]}), "t", "id")
    check_collisions(pl.DataFrame({"t": ["a", "a"], "id": ["C1", "C1"]}), "t", "id")  # a re-landed record


def test_every_pii_column_is_either_tokenised_or_vaulted():
    # a contact detail outside customers would have no vault row to go to
    for spec in (CUSTOMERS, EVENTS):
        pii = {c.name for c in spec.columns if c.tag == "pii"}
        assert pii == set(spec.pseudonymised_columns) | set(spec.vaulted_columns)
    assert EVENTS.vaulted_columns == []
    assert CUSTOMERS.vaulted_columns == ["email", "phone", "full_name"]


def _customer(customer_id: str, email: str, phone: str | None = "+44 20 7946 0000") -> dict:
    return {"customer_id": customer_id, "email": email, "phone": phone, "full_name": f"Name {customer_id}",
            "gender": "f", "birth_year": 1980, "country": "GB", "acquisition_channel": "web",
            "signup_ts": datetime(2024, 2, 1, tzinfo=UTC)}


def test_valid_rows_split_into_bronze_and_vault():
    lineage = {"_partition_date": DAY, "_source_file": "f", "_run_id": "r", "_ingested_at": datetime.now(UTC)}
    valid = pl.DataFrame([{**_customer("C1", "a@x.com"), **lineage}, {**_customer("C2", "b@x.com"), **lineage}])
    split = pseudonymise_valid(valid, CUSTOMERS, Tokeniser(KEY))
    assert not {"email", "phone", "full_name"} & set(split.bronze.columns)
    assert split.bronze.get_column("customer_id").to_list() == [token(KEY, "C1"), token(KEY, "C2")]
    assert split.vault.select("customer_id", "source_customer_id", "email").rows() == [
        (token(KEY, "C1"), "C1", "a@x.com"), (token(KEY, "C2"), "C2", "b@x.com")]
    assert split.bronze.height == split.vault.height == valid.height


def test_quarantined_records_carry_no_clear_personal_data():
    raw = pl.DataFrame([_customer("C9", "not-an-email")])
    protected = protect_quarantined(raw, CUSTOMERS, Tokeniser(KEY))
    assert protected.row(0, named=True)["email"] == token(KEY, "not-an-email")
    assert protected.row(0, named=True)["customer_id"] == token(KEY, "C9")
    assert protected.row(0, named=True)["country"] == "GB"


def test_ingestion_writes_tokens_to_bronze_and_contacts_only_to_the_vault(tmp_path):
    landing = tmp_path / "landing"
    folder = landing / "customers" / f"date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    rows = [_customer("C1", "a@x.com"), _customer("C2", "b@x.com"), _customer("C3", "broken-email")]
    pl.DataFrame(rows).write_parquet(folder / "part-0.parquet")
    lake = LakeResource(root=str(tmp_path / "lake"))
    result = materialize(INGESTION, partition_key=DAY.isoformat(), resources={
        "assay": AssayResource(home=str(tmp_path), landing_dir=str(landing), column_mapping_json=json.dumps({})),
        "lake": lake})
    assert result.success
    key = pseudonym_key(tmp_path)

    bronze = lake.scan("bronze", "customers").collect()
    vault = lake.scan(*VAULT_TABLE).collect()
    quarantine = lake.scan("quarantine", "customers").collect()
    # C3's malformed email is nulled and C3 kept; the quarantine notes the repair, tokenised like every value there
    assert sorted(bronze.get_column("customer_id")) == sorted([token(key, c) for c in ("C1", "C2", "C3")])
    assert vault.sort("source_customer_id").select("source_customer_id", "email").rows() == [
        ("C1", "a@x.com"), ("C2", "b@x.com"), ("C3", None)]
    assert quarantine.select("customer_id", "disposition").rows() == [(token(key, "C3"), "value_nulled")]
    # No clear id, email, phone or name anywhere in the lake but the vault.
    ids, contacts = {"C1", "C2", "C3"}, ["a@x.com", "b@x.com", "broken-email", "7946 0000", "Name C"]
    for path in (tmp_path / "lake").rglob("*.parquet"):
        if "restricted" in path.parts:
            continue
        cells = [str(v) for row in pl.read_parquet(path).rows() for v in row if v is not None]
        assert not ids & set(cells), path
        assert not [c for c in contacts + ['"C1"', '"C2"', '"C3"'] if any(c in cell for cell in cells)], path
    vault_meta = [m for m in result.get_asset_materialization_events()
                  if m.asset_key == AssetKey(list(VAULT_TABLE))][0].materialization.metadata
    assert vault_meta["rows_vaulted"].value == 3
    # conservation holds with the vault beside: in = bronze + rejected rows, and one vault row per bronze row
    rejected = quarantine.filter(pl.col("disposition") == "rejected").height
    assert bronze.height + rejected == len(rows) and vault.height == bronze.height


def test_generated_homes_share_a_seed_derived_key_that_real_files_refuse(tmp_path, monkeypatch):
    from domain.pseudonym import install_synthetic_key

    monkeypatch.delenv("ASSAY_PSEUDONYM_KEY", raising=False)
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert install_synthetic_key(first, 7) and install_synthetic_key(second, 7) and install_synthetic_key(other, 8)
    assert pseudonym_key(first) == pseudonym_key(second) != pseudonym_key(other)
    assert not install_synthetic_key(first, 8)  # an existing key is never replaced: the tokens in the lake stay valid
    assert pseudonym_key(first) == pseudonym_key(second)
    with pytest.raises(PermissionError, match="synthetic"):
        pseudonym_key(first, real_data=True)
    random_home = tmp_path / "d"
    key = pseudonym_key(random_home, real_data=True)  # a deployment's own random key
    assert not install_synthetic_key(random_home, 7) and pseudonym_key(random_home) == key


def test_the_key_file_is_private_from_its_first_byte_and_the_first_of_two_first_runs_wins(tmp_path, monkeypatch):
    import stat
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.delenv("ASSAY_PSEUDONYM_KEY", raising=False)
    homes = [tmp_path / "home"] * 8
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(pseudonym_key, homes))
    assert len(keys) == 1  # every first run uses the one key that was installed
    secrets_dir = tmp_path / "home" / "secrets"
    assert [p.name for p in secrets_dir.iterdir()] == ["pseudonym.key"]  # no staged copy is left behind
    assert stat.S_IMODE((secrets_dir / "pseudonym.key").stat().st_mode) == 0o600
    # an installed key is never overwritten, whoever comes second
    from domain.pseudonym import _write_key

    assert not _write_key(secrets_dir / "pseudonym.key", b"y" * 32)
    assert pseudonym_key(tmp_path / "home") in keys


def test_a_short_key_in_the_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_PSEUDONYM_KEY", "hunter2")
    with pytest.raises(ValueError, match="at least 32"):
        pseudonym_key(tmp_path)
    monkeypatch.setenv("ASSAY_PSEUDONYM_KEY", "x" * 32)
    assert pseudonym_key(tmp_path) == b"x" * 32


def test_erasure_in_a_shell_without_the_deployment_key_fails_instead_of_making_a_new_one(tmp_path, monkeypatch):
    from assets.governance.dsar import DsarContext, new_request, process_pending, submit_request
    from domain.contract import VAULT_TABLE
    from resources.lake import LakeResource

    monkeypatch.delenv("ASSAY_PSEUDONYM_KEY", raising=False)
    home, lake = tmp_path / "home", LakeResource(root=str(tmp_path / "home" / "lake"))
    lake.append(*VAULT_TABLE, pl.DataFrame({"customer_id": ["tok"], "source_customer_id": ["C1"]}))  # ingested
    submit_request(lake, home, new_request("C1", "erasure"))
    with pytest.raises(LookupError, match="a new key would match nobody"):
        process_pending(DsarContext(lake, home, tmp_path / "landing", home / "warehouse.duckdb"))
    assert not (home / "secrets").exists()


def test_a_key_other_than_the_lakes_is_refused_by_ingestion_and_by_erasure(tmp_path, monkeypatch):
    """The first run records the key's fingerprint in the lake; a shell with another key (a typo, a rotated
    secret, another home's key file) is refused before it writes tokens that match nobody."""
    from assets.governance.dsar import DsarContext, new_request, process_pending, requests, submit_request
    from assets.key_check import KeyMismatch

    deployment, other = "the deployment's key, 32 bytes or more", "someone else's key, 32 bytes or more"
    folder = tmp_path / "landing" / "customers" / f"date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    pl.DataFrame([_customer("C1", "a@x.com")]).write_parquet(folder / "part-0.parquet")
    lake = LakeResource(root=str(tmp_path / "lake"))
    resources = {"assay": AssayResource(home=str(tmp_path), landing_dir=str(tmp_path / "landing"),
                                        column_mapping_json="{}"), "lake": lake}
    monkeypatch.setenv("ASSAY_PSEUDONYM_KEY", deployment)
    assert materialize(INGESTION, partition_key=DAY.isoformat(), resources=resources).success

    monkeypatch.setenv("ASSAY_PSEUDONYM_KEY", other)
    failed = materialize(INGESTION, partition_key=DAY.isoformat(), resources=resources, raise_on_error=False)
    failures = [e.step_failure_data.error.cause.cls_name for e in failed.all_events if e.is_step_failure]
    assert failures and set(failures) == {"KeyMismatch"}  # every source, before anything is written
    submit_request(lake, tmp_path, new_request("C1", "erasure"))
    with pytest.raises(KeyMismatch, match="not the one this lake's tokens were made with") as refused:
        process_pending(DsarContext(lake, tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb"))
    assert deployment not in str(refused.value) and other not in str(refused.value)
    assert requests(lake).get_column("status").to_list() == ["pending"]
    monkeypatch.setenv("ASSAY_PSEUDONYM_KEY", deployment)
    assert len(process_pending(DsarContext(lake, tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb"))) == 1
