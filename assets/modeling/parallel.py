"""How a step shares its cores: LightGBM's configured threads spent on independent tasks (tuning folds, candidate
fits, fold scores, ablation refits), and OpenBLAS kept to one thread beside them. On this kind of machine two
one-thread fits side by side beat one fit on two threads: LightGBM's per-split synchronisation costs more than it
saves on fold-sized data (docs/performance.md)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Parallelism:
    """`workers` tasks at once, each fitting on `fit_threads`. Each prediction runs on `predict_threads`: its share
    when tasks run side by side, else 0, LightGBM's default, as scoring uses."""

    workers: int
    fit_threads: int
    predict_threads: int

    @classmethod
    def of(cls, threads: int) -> Parallelism:
        threads = max(1, int(threads))
        workers = min(2, threads)
        return cls(workers, threads // workers, threads // workers if workers > 1 else 0)


def concurrently(tasks: list[Callable[[], T]], workers: int) -> list[T]:
    """Independent LightGBM tasks on `workers` threads (LightGBM releases the GIL while it works); the results in
    task order, so nothing downstream depends on which finished first."""
    if workers < 2 or len(tasks) < 2:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [future.result() for future in futures]


def one_blas_thread():
    """A context in which numpy's and scipy's OpenBLAS use one thread (threadpoolctl's public API). OpenBLAS starts a
    thread per core and its idle threads spin, so beside LightGBM's threads, or a second drift report, they slow the
    step they are meant to speed (docs/performance.md, "A run on both cores"). It limits the libraries already
    loaded: enter it after the imports that bring them."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
