"""Shared fixtures: every test works in its own temporary ASSAY_HOME."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def lake(tmp_path):
    from resources.lake import LakeResource

    return LakeResource(root=str(tmp_path / "lake"))


# The longest test files, longest first (their times: docs/performance.md, "The test suite"), so no long file starts
# last and leaves one core idle (`make test-scenarios` starts each worker on one scenario replay); the make targets
# pass --no-loadscope-reorder, or xdist would reorder the files by their number of tests.
LONGEST_FIRST = ("test_churn_process.py", "test_broken_field.py", "test_end_to_end.py", "test_clock.py",
                 "test_bring_your_own_data.py", "test_dbt_features.py", "test_public_data.py", "test_dsar.py",
                 "test_crash_safety.py", "test_object_store_lake.py", "test_postgres_instance.py",
                 "test_ui_shutdown.py", "test_synthetic.py")


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))
