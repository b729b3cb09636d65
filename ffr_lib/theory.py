"""Theorem 1 on count tables: how much Y depends on (B, G), and how low augmentation can push it.

A count table is an int array `counts[y, b, g]` of shape (n_y, n_b, 2), g = 0 real and g = 1
synthetic (`ffr_lib.data.grouped.REAL`, `SYNTHETIC`). The measures below treat every axis but
the first as "the cell", so a (n_y, n_b) table (Y against B alone) works too. Two measures of the
dependence of Y on the cells (b, g), both 0 exactly when P(Y | b, g) = P(Y) in every cell present:
- worst-cell total variation `max_tv`: max over cells c with a sample of TV(P(Y | c), P(Y)),
  where P(Y) is the class distribution of the *whole* table (in [0, 1));
- mutual information `mutual_information`: I(Y; B, G) in **nats** (divide by ln 2 for bits),
  i.e. the share-weighted mean over cells of KL(P(Y | c) || P(Y)).

Theorem 1 (paper, appendix A): if the real part is biased, i.e. P(Y | b, real) is not the same
for every b, no synthetic counts make Y independent of (B, G). How close one can get:
- The real cells r_b = P(Y | b, real) are fixed; augmentation only moves P(Y), a single point q
  of the simplex shared by every cell. So any augmentation has worst-cell TV >= max_b TV(r_b, q)
  >= rho* = min_q max_b TV(r_b, q): the smallest TV ball holding all real conditionals (its
  Chebyshev radius; `augmentation_floor` solves it exactly as a small LP; for two classes it is
  half the spread of P(Y=0 | b, real), `two_class_floor`). rho* = 0 iff the real table is unbiased.
- rho* is also approached: put N_S synthetic samples with class histogram q* + (N_R/N_S)(q* - p_R)
  (p_R the real class distribution) into one cell; then P(Y) = q* and that cell's TV is
  (N_R/N_S) TV(q*, p_R) -> 0. So rho* is the infimum over augmentations, reached at a finite
  budget when q* is rational and positive where p_R is, approached otherwise. The argument lets
  synthetic samples go to any (y, b); that holds in the binary world and within each family of
  the animals world, where B decides the family (`by_family`).
- The mutual information weights each cell by its share: drowning the real data in synthetic
  data sends it to 0 (its infimum) but never reaches 0, while the worst-cell TV stays >= rho*.
`exhaustive_optimum` checks both by brute force over small integer synthetic counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .data.grouped import REAL, SYNTHETIC
from .data.splits import PAPER_RATIOS, TRAIN_FLOOR, biased_counts
from .data.world import WorldConfig, split_counts
from .generation.recipes import Recipe, synthetic_counts, usb_counts

Measure = Literal["tv", "mi"]
MODES = ("None", "USB", "ASB", "FFR")
MAX_CANDIDATES = 5_000_000  # exhaustive search refuses grids larger than this


def as_table(real: np.ndarray, synthetic: np.ndarray | None = None) -> np.ndarray:
    """int64 (n_y, n_b, 2) from real and optional synthetic (n_y, n_b) counts."""
    real = np.asarray(real, dtype=np.int64)
    if real.ndim != 2:
        raise ValueError(f"real counts must be (n_y, n_b), got shape {real.shape}")
    out = np.zeros((*real.shape, 2), dtype=np.int64)
    out[..., REAL] = real
    if synthetic is not None:
        synthetic = np.asarray(synthetic, dtype=np.int64)
        if synthetic.shape != real.shape:
            raise ValueError(f"synthetic counts {synthetic.shape} do not match real counts {real.shape}")
        out[..., SYNTHETIC] = synthetic
    if (out < 0).any():
        raise ValueError("counts must be non-negative")
    return out


def _batch(counts: np.ndarray) -> np.ndarray:
    """float (K, n_y, n_cells) from (K, n_y, ...) counts; rejects empty tables."""
    c = np.asarray(counts, dtype=np.float64)
    c = c.reshape(c.shape[0], c.shape[1], -1)
    if (c.sum(axis=(1, 2)) <= 0).any():
        raise ValueError("a count table is empty")
    return c


def _tv_batch(c: np.ndarray) -> np.ndarray:
    """(K,) worst-cell TV of (K, n_y, n_cells) counts."""
    n_cell = c.sum(axis=1)  # (K, m)
    p_y = c.sum(axis=2) / c.sum(axis=(1, 2))[:, None]  # (K, n_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = c / n_cell[:, None, :]
    tv = 0.5 * np.abs(cond - p_y[:, :, None]).sum(axis=1)  # (K, m)
    return np.where(n_cell > 0, tv, 0.0).max(axis=1)


def _mi_batch(c: np.ndarray) -> np.ndarray:
    """(K,) I(Y; cell) in nats of (K, n_y, n_cells) counts."""
    p = c / c.sum(axis=(1, 2))[:, None, None]
    outer = p.sum(axis=2)[:, :, None] * p.sum(axis=1)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, p * np.log(p / outer), 0.0)
    return np.maximum(terms.sum(axis=(1, 2)), 0.0)


def max_tv(counts: np.ndarray) -> float:
    """Largest TV(P(Y | c), P(Y)) over the cells c present; counts (n_y, ...) with cells = the rest."""
    return float(_tv_batch(_batch(np.asarray(counts)[None]))[0])


def mutual_information(counts: np.ndarray) -> float:
    """I(Y; cell) in nats; counts (n_y, ...) with cells = every other axis (e.g. (B, G))."""
    return float(_mi_batch(_batch(np.asarray(counts)[None]))[0])


def families(support: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Connected components (classes, biases) of the bipartite graph of present (y, b) pairs.

    In the animals world B decides the family (bird scenes vs dog scenes), a dependence of Y on B
    that no balancing can or should remove; measures `by_family` compare within a family.
    """
    support = np.asarray(support, dtype=bool)
    n_y, n_b = support.shape
    label = -np.ones(n_y, dtype=np.int64)
    comps = []
    for start in range(n_y):
        if label[start] >= 0 or not support[start].any():
            continue
        ys, frontier = {start}, [start]
        label[start] = len(comps)
        while frontier:
            bs = support[frontier].any(axis=0)
            new = [y for y in np.flatnonzero(support[:, bs].any(axis=1)) if label[y] < 0]
            label[new] = len(comps)
            ys.update(new)
            frontier = new
        ys_arr = np.array(sorted(ys))
        comps.append((ys_arr, np.flatnonzero(support[ys_arr].any(axis=0))))
    return comps


@dataclass(frozen=True)
class Dependence:
    """Dependence of Y on (B, G) and, with G summed out, on B alone (MI in nats)."""

    tv_bg: float  # worst-cell TV over (b, g) cells
    mi_bg: float  # I(Y; B, G)
    tv_b: float  # worst-cell TV over b, real and synthetic pooled
    mi_b: float  # I(Y; B)


def dependence(table: np.ndarray, by_family: bool = False) -> Dependence:
    """Both measures on a (n_y, n_b, 2) table; `by_family`: TV is the worst over families, MI is
    I(Y; B, G | family) = sum_f P(f) I_f (the family is a function of B)."""
    table = np.asarray(table, dtype=np.int64)
    if table.ndim != 3:
        raise ValueError(f"expected a (n_y, n_b, g) table, got shape {table.shape}")
    parts = [table[np.ix_(ys, bs)] for ys, bs in families(table.sum(axis=2) > 0)] if by_family else [table]
    total = table.sum()
    tv_bg = max(max_tv(t) for t in parts)
    tv_b = max(max_tv(t.sum(axis=2)) for t in parts)
    mi_bg = sum(t.sum() / total * mutual_information(t) for t in parts)
    mi_b = sum(t.sum() / total * mutual_information(t.sum(axis=2)) for t in parts)
    return Dependence(float(tv_bg), float(mi_bg), float(tv_b), float(mi_b))


@dataclass(frozen=True)
class Floor:
    """The smallest worst-cell TV that augmenting a real table approaches (see module docstring)."""

    radius: float  # rho* = min_q max_b TV(q, P(Y | b, real))
    q: tuple[float, ...]  # a P(Y) attaining it (by family: P(Y | family) on each family's classes)


def _radius(conds: np.ndarray) -> tuple[float, np.ndarray]:
    """Chebyshev radius in TV of the columns of `conds` (n_y, m): an LP in (q, u, t).

    minimise t  s.t.  u_{b,y} >= |r_b[y] - q[y]|,  sum_y u_{b,y} / 2 <= t,  sum q = 1,  q >= 0.
    """
    from scipy.optimize import linprog

    n, m = conds.shape
    nv = n + m * n + 1
    cost = np.zeros(nv)
    cost[-1] = 1.0
    rows, rhs = [], []
    for b in range(m):
        for y in range(n):
            u = n + b * n + y
            for sign in (1.0, -1.0):  # sign * (q_y - r_by) - u <= 0
                row = np.zeros(nv)
                row[y], row[u] = sign, -1.0
                rows.append(row)
                rhs.append(sign * conds[y, b])
        row = np.zeros(nv)
        row[n + b * n : n + (b + 1) * n] = 0.5
        row[-1] = -1.0
        rows.append(row)
        rhs.append(0.0)
    eq = np.zeros((1, nv))
    eq[0, :n] = 1.0
    res = linprog(cost, A_ub=np.array(rows), b_ub=np.array(rhs), A_eq=eq, b_eq=[1.0],
                  bounds=[(0, 1)] * n + [(0, None)] * (m * n + 1), method="highs")
    if not res.success:  # pragma: no cover - the LP is always feasible and bounded
        raise RuntimeError(f"augmentation floor LP failed: {res.message}")
    q = np.clip(res.x[:n], 0, None)
    return max(float(res.fun), 0.0), q / q.sum()


def augmentation_floor(real: np.ndarray, by_family: bool = False) -> Floor:
    """rho* for real (n_y, n_b) counts: the infimum over all synthetic augmentations of the
    worst-cell TV of Y on (B, G). Exact (LP); 0 iff every real P(Y | b) is the same."""
    real = np.asarray(real, dtype=np.int64)
    if real.ndim != 2 or real.sum() <= 0:
        raise ValueError(f"real counts must be a non-empty (n_y, n_b) table, got shape {real.shape}")
    parts = families(real > 0) if by_family else [(np.arange(real.shape[0]), np.arange(real.shape[1]))]
    radius, q = 0.0, np.zeros(real.shape[0])
    for ys, bs in parts:
        sub = real[np.ix_(ys, bs)].astype(np.float64)
        sub = sub[:, sub.sum(axis=0) > 0]
        r, qf = _radius(sub / sub.sum(axis=0))
        radius, q[ys] = max(radius, r), qf
    return Floor(radius, tuple(float(v) for v in q))


def two_class_floor(real: np.ndarray) -> float:
    """Closed form of rho* for two classes: (max_b a_b - min_b a_b) / 2, a_b = P(Y=0 | b, real)."""
    real = np.asarray(real, dtype=np.float64)
    if real.shape[0] != 2:
        raise ValueError(f"two_class_floor needs 2 classes, got {real.shape[0]}")
    present = real.sum(axis=0) > 0
    a = real[0, present] / real[:, present].sum(axis=0)
    return float((a.max() - a.min()) / 2)


def exhaustive_optimum(
    real: np.ndarray, max_count: int, measure: Measure = "tv", support: np.ndarray | None = None,
    chunk: int = 1 << 16,
) -> tuple[float, np.ndarray]:
    """Brute force: the least `measure` of Y on (B, G) over every synthetic table with counts in
    0..max_count in each (y, b) allowed by `support` (default: all). Returns (value, synthetic
    (n_y, n_b)); ties go to the first in mixed-radix order, so no augmentation wins a tie."""
    real = np.asarray(real, dtype=np.int64)
    support = np.ones(real.shape, dtype=bool) if support is None else np.asarray(support, dtype=bool)
    free = np.flatnonzero(support.ravel())
    base = max_count + 1
    n_candidates = base ** len(free)
    if max_count < 0 or n_candidates > MAX_CANDIDATES:
        raise ValueError(f"exhaustive_optimum: max_count={max_count} over {len(free)} cells gives "
                         f"{n_candidates} candidates (limit {MAX_CANDIDATES})")
    score = {"tv": _tv_batch, "mi": _mi_batch}[measure]
    powers = base ** np.arange(len(free), dtype=np.int64)
    best, best_syn = np.inf, np.zeros_like(real)
    for start in range(0, n_candidates, chunk):
        idx = np.arange(start, min(start + chunk, n_candidates), dtype=np.int64)
        syn = np.zeros((len(idx), real.size), dtype=np.int64)
        syn[:, free] = (idx[:, None] // powers) % base
        tables = np.zeros((len(idx), *real.shape, 2), dtype=np.int64)
        tables[..., REAL] = real
        tables[..., SYNTHETIC] = syn.reshape(len(idx), *real.shape)
        values = score(_batch(tables))
        i = int(np.argmin(values))
        if values[i] < best:
            best, best_syn = float(values[i]), tables[i, ..., SYNTHETIC].copy()
    return best, best_syn


def mode_tables(real: np.ndarray, mode: str, recipe: Recipe = Recipe()) -> dict[str, np.ndarray]:
    """The (n_y, n_b, 2) training table of each stage of `mode` for real (y, b) counts.

    None: real only. USB: real + `usb_counts`. ASB: real + the balanced recipe (the authors'
    sizes). FFR: stage 1 = the balanced synthetic set alone, stage 2 = the real set alone.
    """
    real = np.asarray(real, dtype=np.int64)
    if mode == "None":
        return {"train": as_table(real)}
    if mode == "USB":
        return {"train": as_table(real, usb_counts(real))}
    if mode == "ASB":
        return {"train": as_table(real, synthetic_counts(real, recipe))}
    if mode == "FFR":
        stage1 = as_table(np.zeros_like(real), synthetic_counts(real, recipe))
        return {"stage 1": stage1, "stage 2": as_table(real)}
    raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")


def world_pool(config: WorldConfig) -> np.ndarray:
    """int64 (n_y, n_b) counts of the world's training pool."""
    spec = config.spec
    out = np.zeros((len(spec.class_names), len(spec.bias_names)), dtype=np.int64)
    for y, b, n in split_counts(config, "train"):
        out[y, b] = n
    return out


def world_dependence(
    layouts: Sequence[str] = ("binary", "animals"), ratios: Sequence[float] = PAPER_RATIOS, seed: int = 0,
    recipe: Recipe = Recipe(),
) -> pd.DataFrame:
    """Dependence of Y on (B, G) and on B in every mode's training set(s) of the embedded world,
    from counts alone, by family. One row per (layout, ratio, mode, stage); `floor` is rho* of
    the real biased split."""
    rows = []
    for layout in layouts:
        config = WorldConfig(layout=layout, seed=seed)
        pool = world_pool(config)
        for ratio in ratios:
            real = biased_counts(pool, ratio, floor=TRAIN_FLOOR, majority=list(range(pool.shape[0])),
                                 class_names=config.spec.class_names)
            floor = augmentation_floor(real, by_family=True).radius
            for mode in MODES:
                for stage, table in mode_tables(real, mode, recipe).items():
                    d = dependence(table, by_family=True)
                    rows.append({"dataset": f"shapes-{layout}", "ratio": ratio, "mode": mode, "stage": stage,
                                 "n_real": int(table[..., REAL].sum()), "n_synthetic": int(table[..., SYNTHETIC].sum()),
                                 "tv_bg": d.tv_bg, "mi_bg": d.mi_bg, "tv_b": d.tv_b, "mi_b": d.mi_b, "floor": floor})
    return pd.DataFrame(rows)


def dependence_figure(df: pd.DataFrame):
    """Dependence against bias ratio from `world_dependence`: one row per dataset, TV and MI.
    Series that coincide (None, ASB and FFR stage 2 often do) are dodged sideways a little."""
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.2 * len(datasets)), squeeze=False)
    markers = "osD^vx"
    for row, name in zip(axes, datasets):
        sub = df[df["dataset"] == name]
        ratios = sorted(sub["ratio"].unique())
        x = np.arange(len(ratios), dtype=float)
        series = [(f"{m}" if s == "train" else f"{m} {s}", part.set_index("ratio").loc[ratios], ("tv_bg", "mi_bg"))
                  for (m, s), part in sub.groupby(["mode", "stage"], sort=False)]
        usb = sub[sub["mode"] == "USB"].set_index("ratio").loc[ratios]
        series.append(("USB, Y on B only", usb, ("tv_b", "mi_b")))
        shifts = np.linspace(-0.15, 0.15, len(series))
        for i, (label, part, cols) in enumerate(series):
            for ax, col in zip(row, cols):
                ax.plot(x + shifts[i], part[col], marker=markers[i % len(markers)], ls="--" if "only" in label else "-",
                        label=label)
        floor = sub.drop_duplicates("ratio").set_index("ratio").loc[ratios]["floor"]
        row[0].plot(x, floor, ls=":", color="black", label="floor over all augmentations")
        for ax, title in zip(row, ("worst-cell TV of Y on (B, G)", "I(Y; B, G | family) [nats]")):
            ax.set_xticks(x, [f"{r:.1%}" for r in ratios])
            ax.set_xlabel("bias ratio")
            ax.set_title(f"{name}: {title}", fontsize=10)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
