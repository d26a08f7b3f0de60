"""How a step shares the cores: OpenBLAS held to one thread where LightGBM or another report runs beside it."""

from __future__ import annotations

import numpy  # noqa: F401  (numpy's OpenBLAS)
import pytest
import scipy.linalg  # noqa: F401  (its own OpenBLAS, loaded as a model step loads it through scikit-learn)
from threadpoolctl import threadpool_info

from assets.modeling.parallel import one_blas_thread


def _blas_threads() -> list[tuple[str, int]]:
    return sorted((info["filepath"], info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas")


def test_one_blas_thread_holds_every_loaded_blas_to_one_thread_then_gives_their_threads_back():
    before = _blas_threads()
    if not before or all(threads == 1 for _, threads in before):
        pytest.skip("no BLAS here runs more than one thread")
    with one_blas_thread():
        assert [threads for _, threads in _blas_threads()] == [1] * len(before)
    assert _blas_threads() == before
