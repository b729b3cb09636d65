"""L1 logistic regressions (liblinear), as DFR fits them, serially or on a pool of processes.

liblinear draws from one process-wide random state (seeded per fit), so fits on threads of one
process race for it and change the numbers; fits in separate processes do not. A refit of DFR
runs 27 of them (7 to tune C, 20 to average), and on features that learnt the shortcut liblinear
converges slowly (a 4-class refit took a median 6.8 s serially on the H100 machine's CPU;
docs/performance.md), while the GPU waits. `fit_many` spreads them over spawned processes that
import only numpy and scikit-learn, inside a GPU sweep (`processes_for`); each fit is
the same number on any count of processes.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

Job = tuple[np.ndarray, np.ndarray, float]  # standardised features (N, D), labels (N,), C

_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def fit_l1(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """L1 logistic regression; returns one-vs-rest (K', D) coefficients and (K',) intercepts
    (K' = 1 for two classes, whose score is for class 1)."""
    base = LogisticRegression(l1_ratio=1.0, C=c, solver="liblinear", random_state=seed)
    if len(np.unique(y)) > 2:
        model = OneVsRestClassifier(base).fit(x, y)
        coef = np.concatenate([e.coef_ for e in model.estimators_])
        intercept = np.concatenate([np.atleast_1d(e.intercept_) for e in model.estimators_])
        return coef, intercept
    base.fit(x, y)
    return base.coef_, base.intercept_


def spare_cores() -> int:
    """Processes a GPU sweep gives fit_many: all cores but two, at most 8; 0 (serial) on a machine
    of 3 or fewer cores, where spawning costs more than it saves."""
    n = min(8, (os.cpu_count() or 1) - 2)
    return n if n >= 2 else 0


_default = 0  # serial unless a sweep says otherwise (processes_for): spawning needs a guarded __main__


@contextlib.contextmanager
def processes_for(n: int) -> Iterator[None]:
    """fit_many's default is `n` processes inside the block (the packed GPU executor: spare_cores());
    after it the pool is shut down, so no process outlives the sweep."""
    global _default
    before, _default = _default, max(0, int(n))
    try:
        yield
    finally:
        _default = before
        shutdown()


def shutdown() -> None:
    """Stop the pool's processes (a later fit_many starts a new one)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None


def _get_pool(n: int) -> ProcessPoolExecutor:
    """One pool of `n` spawned processes per process, kept for later refits."""
    global _pool, _pool_size
    if _pool is None or _pool_size != n:
        shutdown()
        _pool, _pool_size = ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")), n
    return _pool


atexit.register(shutdown)


def fit_many(jobs: list[Job], seed: int, processes: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """fit_l1 of each job, in the jobs' order: in this process (`processes` 0 or 1, or one job),
    else on a pool of that many (default: processes_for's, serial outside it). Spawned
    processes re-import the main module: a script that sets processes needs the
    `if __name__ == "__main__":` guard (`ffr`, notebooks and pytest have one)."""
    n = _default if processes is None else processes
    if n <= 1 or len(jobs) <= 1:
        return [fit_l1(x, y, c, seed) for x, y, c in jobs]
    pool = _get_pool(n)
    futures = [pool.submit(fit_l1, x, y, c, seed) for x, y, c in jobs]
    return [f.result() for f in futures]
