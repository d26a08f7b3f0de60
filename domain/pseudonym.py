"""Keyed pseudonyms: identifiers become HMAC-SHA256 tokens from bronze onward.

A token is the first 60 bits of HMAC-SHA256(key, "id:" + value) in lower-case base32: 12 letters and digits, short
enough for DuckDB to keep inline (strings up to 12 bytes are not stored out of line, which matters in the
per-customer aggregates), never starting with a dash a command line would take for an option, and long enough that
a collision has odds of about 4 in 10^7 among 1M customers (4 in 10^5 among 10M); ingestion refuses one rather
than merge two people, see `check_collisions`. The same value always gives the same token under one key, so joins across
sources keep working; without the key a token cannot be reversed or recomputed from a guessed id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np
import polars as pl

from domain.private_files import install_private

TOKEN_LENGTH = 12
KEY_ENV = "ASSAY_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32  # HMAC-SHA256's own output size: a shorter secret can be guessed more easily than a token


def _key_path(home: Path) -> Path:
    return Path(home) / "secrets" / "pseudonym.key"


def _write_key(path: Path, key: bytes) -> bool:
    """Create the key file readable by its owner only from the first byte, and only if none exists (two first runs
    at once agree on one key: the other's is then the one used). Returns whether this call's key was installed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return install_private(path, key)


def pseudonym_key(home: Path, real_data: bool = False, create: bool = True) -> bytes:
    """The deployment's secret key: ASSAY_PSEUDONYM_KEY (at least MIN_KEY_BYTES bytes), else a random key kept in
    $ASSAY_HOME/secrets (mode 600) and created on first use, unless `create` is off: a step that must match tokens
    already in the lake (erasure) would match nobody with a new key, so it fails instead. Never a constant in code.
    Losing it means new tokens for everyone. With `real_data`, a home holding the synthetic demo's seed-derived key
    is refused: that key is public."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        if len(from_env.encode()) < MIN_KEY_BYTES:
            raise ValueError(f"{KEY_ENV} holds {len(from_env.encode())} bytes; a key needs at least {MIN_KEY_BYTES} "
                             "(for example the output of `openssl rand -base64 32`)")
        return from_env.encode()
    path = _key_path(home)
    if not path.exists():
        if not create:
            raise LookupError(f"no pseudonym key: {KEY_ENV} is unset and {path} does not exist. The lake's tokens "
                              "were made with the deployment's key; run where it is set, since a new key would match "
                              "nobody")
        _write_key(path, secrets.token_bytes(32))
    if real_data and path.with_suffix(".synthetic").exists():
        raise PermissionError(f"{path} is the synthetic demo's seed-derived key, which anyone can recompute; real "
                              "files need a secret one: set ASSAY_PSEUDONYM_KEY or use a fresh ASSAY_HOME")
    return path.read_bytes()


def install_synthetic_key(home: Path, seed: int) -> bool:
    """For generated data only: a key derived from the generator's seed, so that two homes generated with the
    same seed hold the same tokens and therefore the same seeded customer samples, and a demo's model figures
    repeat on a fresh clone. Written only where no key exists yet (and ASSAY_PSEUDONYM_KEY is unset); marked so
    that real files are never pseudonymised with it. Returns whether it was written."""
    path = _key_path(home)
    if os.environ.get(KEY_ENV) or path.exists():
        return False
    if not _write_key(path, hashlib.sha256(f"assay synthetic demo key, seed {seed}".encode()).digest()):
        return False  # another first run installed a key meanwhile
    path.with_suffix(".synthetic").write_text("this key is derived from the synthetic generator's public seed\n")
    return True


def key_fingerprint(key: bytes) -> str:
    """Names a key without revealing it (a keyed hash in its own domain): the lake keeps it, so a process holding
    another key is refused before its tokens match nobody."""
    return hmac.digest(key, b"assay:key-fingerprint", "sha256").hex()[:16]


def token(key: bytes, value: str) -> str:
    digest = hmac.digest(key, f"id:{value}".encode(), "sha256")
    return base64.b32encode(digest[:8]).decode()[:TOKEN_LENGTH].lower()


_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
# a token's letters: 5 bits each, from the top of the digest's first 8 bytes (12 letters use 60 of their 64 bits)
_BASE32_SHIFTS = np.array([64 - 5 * (i + 1) for i in range(TOKEN_LENGTH)], dtype=np.uint64)


def tokens(key: bytes, values: list[str]) -> pl.Series:
    """`token` of each value, the base32 letters picked for all values at once (the standard library's base32
    encoder is written in Python and cost as much as the HMAC itself)."""
    digest = hmac.digest
    heads = b"".join([digest(key, b"id:" + value.encode(), "sha256")[:8] for value in values])
    words = np.frombuffer(heads, dtype=">u8").astype(np.uint64)
    letters = _BASE32[(words[:, None] >> _BASE32_SHIFTS) & np.uint64(31)]
    return pl.Series(letters.view(f"S{TOKEN_LENGTH}").ravel(), dtype=pl.Binary).cast(pl.Utf8)


class Tokeniser:
    """Tokens under one key, remembering every value already hashed: ingestion meets the same customers and devices
    in every chunk of a backfill, and would otherwise pay one HMAC in Python per value again in each.

    A batch of fewer than `hash_outright_below` rows is hashed outright: a look-up in the memory builds a hash
    table over everything seen so far, which costs more than hashing a few thousand values, and ingestion hands
    over many such batches (a chunk's quarantined rows, column by column). Figures: docs/performance.md, "The large
    ingestion, profiled"."""

    def __init__(self, key: bytes, hash_outright_below: int = 10_000) -> None:
        self.key = key
        self.hash_outright_below = hash_outright_below
        self._known = pl.DataFrame(schema={"value": pl.Utf8, "token": pl.Utf8})

    def __call__(self, values: pl.Series) -> pl.Series:
        """Each value replaced by its token (nulls stay null)."""
        text = values.cast(pl.Utf8)
        if text.len() < self.hash_outright_below:
            distinct = text.drop_nulls().unique()
            return _looked_up(text, self._mapping(distinct)).alias(values.name)
        # One join against the memory, then the values it did not know hashed and joined against those alone: the
        # cost follows the batch and what it brings that is new.
        known = _looked_up(text, self._known)
        unseen = text.is_not_null() & known.is_null()
        if unseen.any():
            fresh = self._mapping(text.filter(unseen).unique())
            self._known = pl.concat([self._known, fresh], rechunk=fresh.height > 10_000)
            known = known.zip_with(known.is_not_null(), _looked_up(text, fresh))
        return known.alias(values.name)

    def _mapping(self, distinct: pl.Series) -> pl.DataFrame:
        return pl.DataFrame({"value": distinct, "token": tokens(self.key, distinct.to_list())},
                            schema=self._known.schema)

    def columns(self, frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """`frame` with each of `columns` that it has tokenised."""
        present = [c for c in columns if c in frame.columns]
        return frame.with_columns(self(frame.get_column(c)) for c in present) if present else frame


def _looked_up(text: pl.Series, mapping: pl.DataFrame) -> pl.Series:
    """The token of each value of `text` in `mapping` (distinct values), null where it has none, in `text`'s order."""
    return text.to_frame("value").join(mapping, on="value", how="left", maintain_order="left").get_column("token")


def tokenise(values: pl.Series, key: bytes) -> pl.Series:
    """Each value replaced by its token (nulls stay null); every distinct value is hashed once."""
    return Tokeniser(key)(values)


def with_tokens(frame: pl.LazyFrame, column: str, key: bytes) -> pl.LazyFrame:
    """A lazy frame keyed by raw ids (e.g. the generator's ground truth) re-keyed by tokens, hashing each distinct id
    once and joining, so a large file is never materialised whole."""
    ids = frame.select(pl.col(column).cast(pl.Utf8).unique()).collect().get_column(column)
    mapping = pl.DataFrame({column: ids, "__token": tokenise(ids, key)}).lazy()
    return (frame.with_columns(pl.col(column).cast(pl.Utf8)).join(mapping, on=column, how="left")
            .with_columns(pl.col("__token").alias(column)).drop("__token"))


class TokenCollision(ValueError):
    """Two different identifiers got the same token: joins would merge two people."""


def check_collisions(pairs: pl.DataFrame, token_column: str, source_column: str) -> None:
    clashes = pairs.group_by(token_column).agg(pl.col(source_column).n_unique().alias("n")).filter(pl.col("n") > 1)
    if clashes.height:
        raise TokenCollision(f"{clashes.height} pseudonym token(s) shared by different identifiers; rotate "
                             f"{KEY_ENV} and re-ingest everything (odds about 4 in 10^7 at 1M customers)")
