"""Shared fixtures: every test works in its own temporary ASSAY_HOME."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def lake(tmp_path):
    from resources.lake import LakeResource

    return LakeResource(root=str(tmp_path / "lake"))


def pytest_collection_modifyitems(items):
    # The week-by-week scenarios are the longest files: collected first, each of the two workers starts on one.
    items.sort(key=lambda item: 0 if "scenarios" in item.path.parts else 1)
