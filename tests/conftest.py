"""Shared fixtures: every test works in its own temporary ASSAY_HOME."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def lake(tmp_path):
    from resources.lake import LakeResource

    return LakeResource(root=str(tmp_path / "lake"))
