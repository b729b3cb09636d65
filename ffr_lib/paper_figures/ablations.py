"""Notebook 03, FFR ablations on the embedded world: ECCV tables 1 (stage order), 2
(pretraining distribution), 3 (real vs synthetic test), 4 (corrupted synthetic images), 5
(prompts), 8 (a small ViT), ICLR figure 5 (scaling the synthetic set), our regime map over the
generator's knobs, and claims 2, 3, 4 and 7. Every row of a table is restricted to the datasets
and ratios where the table's own ablation ran (common.scope), so rows compare like with like."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from ..claims import RULE, SUPPORTED, decide, judge
from ..paper_claims import claims_of
from ..paper_numbers import paper_table
from ..tables import MODE_SPECS, STAGE1, Results, arm, arm_rows, mode_arms, paired_cells, summarise
from .common import (
    BUILDERS,
    NOT_RUN,
    REPO_FIGURES,
    Artifact,
    heat_map,
    line_panel,
    paper_bars,
    save,
    scope,
    sidecar,
)

M = mode_arms("erm")
FFR = M["FFR"]
KNOBS_FILE = REPO_FIGURES / "world_knobs.csv"


def _table(results: Results, out: str | Path, meta: Mapping, name: str, arms: dict, key: dict, paper: str | None,
           by: tuple = (), metrics: tuple = ("test_wa", "test_ba")) -> Artifact:
    """A table of `arms` restricted to where arm `key` ran, with the paper's table beside it."""
    where = scope(results, key)
    table = summarise(results, arms, metrics=metrics, by=by, where=where)
    paper_df = paper_table(paper) if paper else None
    fig = None
    if paper_df is not None and len(table):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 1.0 + 0.45 * max(len(table), len(paper_df))))
        ours = table.assign(label=table["row"] + (" " + table[by[0]].astype(str) if by else ""))
        ours = ours.assign(wa=ours.get("test_wa_mean", np.nan) * 100, ba=ours.get("test_ba_mean", np.nan) * 100)
        paper_bars(ax1, ours.fillna(0), "label", f"ours ({results.profile}): WA / BA")
        paper_bars(ax2, paper_df.assign(label=paper_df["row"] + (" sev " + paper_df["severity"].astype(str)
                                                                   if "severity" in paper_df else "")),
                   "label", f"{paper_df['source'][0]}, {paper_df['dataset'][0]}")
        fig.tight_layout()
    art = Artifact(name, table, paper_df, fig)
    return save(art, out, sidecar(results, arms, meta, where, paper_numbers=paper))


@BUILDERS.register("eccv_table1_stage_order")
def stage_order(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    arms = {"stage 1 only": arm(STAGE1), "stage 2 only": M["None"], "2 then 1": arm(FFR, order="2-1"),
            "1 then 2 (FFR)": FFR}
    return _table(results, out, meta, "eccv_table1_stage_order", arms, arms["2 then 1"], "eccv_table1")


@BUILDERS.register("eccv_table2_pretraining")
def pretraining(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    arms = {"no synthetic": M["None"], "FFR biased pretraining": arm(FFR, recipe="biased"),
            "FFR balanced pretraining": FFR}
    return _table(results, out, meta, "eccv_table2_pretraining", arms, arms["FFR biased pretraining"], "eccv_table2")


@BUILDERS.register("eccv_table3_synthetic_test")
def synthetic_test(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    arms = {k: M[k] for k in ("USB", "ASB", "FFR")}
    return _table(results, out, meta, "eccv_table3_synthetic_test", arms, FFR, "eccv_table3",
                  metrics=("test_wa", "test_ba", "synth_wa", "synth_ba"))


@BUILDERS.register("eccv_table4_corruption")
def corruption(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    arms = {k: arm(M[k], corruption=None) for k in ("USB", "ASB", "FFR")}
    return _table(results, out, meta, "eccv_table4_corruption", arms, arm(FFR, corruption=5), "eccv_table4",
                  by=("corruption",))


@BUILDERS.register("eccv_table5_prompts")
def prompts(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    arms = {"ERM (no synthetic)": M["None"], "FFR, A photo of {class}": arm(FFR, recipe="agnostic"),
            "FFR, A photo of {bias} {class}": FFR}
    return _table(results, out, meta, "eccv_table5_prompts", arms, arms["FFR, A photo of {class}"], "eccv_table5")


@BUILDERS.register("eccv_table8_vit")
def vit(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    arms = {k: arm(v, model=None) for k, v in M.items()}
    return _table(results, out, meta, "eccv_table8_vit", arms, arm(FFR, model="vit-small"), "eccv_table8",
                  by=("model",))


@BUILDERS.register("iclr_figure5_scaling")
def scaling(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    """WA and BA of ASB and FFR with the synthetic set at `scale` x the real set (recipe
    'scaled'); USB (its size is fixed) and the default-size ASB/FFR as reference rows."""
    arms = {"ASB": arm(M["ASB"], recipe="scaled", scale=None), "FFR": arm(FFR, recipe="scaled", scale=None)}
    where = scope(results, arms["FFR"])
    table = summarise(results, arms, by=("scale",), where=where)
    refs = summarise(results, {"USB (fixed size)": M["USB"], "ASB (USB's total)": M["ASB"],
                               "FFR (USB's total)": FFR}, where=where)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("test_wa", "test_ba")):
        line_panel(ax, table, "scale", metric, list(arms))
        for (_, r), color in zip(refs[refs["n"] > 0].iterrows(), ("tab:green", "tab:blue", "tab:orange")):  # as their lines
            ax.axhline(r[f"{metric}_mean"], ls=":", color=color, label=r["row"])
        ax.set_xlabel("synthetic images / real images")
        ax.set_title(f"ours ({results.profile}): {metric[5:].upper()}", fontsize=10)
    axes[0].legend(fontsize=9)
    fig.tight_layout()
    both = pd.concat([table, refs], ignore_index=True)
    art = Artifact("iclr_figure5_scaling", both, None, fig)
    return save(art, out, sidecar(results, {**arms, "USB": M["USB"], "ASB0": M["ASB"], "FFR0": FFR}, meta, where,
                                  paper_numbers="none: the ICLR figure's numbers are not in the text"))


REGIME = {"USB": M["USB"], "ASB": M["ASB"], "FFR": FFR, "FFR stage 1": arm(STAGE1)}
SHORT = {"USB": "USB", "ASB": "ASB", "FFR": "FFR", "FFR stage 1": "S1"}


def _best_code(best: str, separated: bool = True) -> float:
    """Colour index of a 'best' cell: the arm's position in REGIME, len(REGIME) for a tie or a
    winner not distinguishable from another arm."""
    names = best.split(" = ") if best else []
    if not names:
        return np.nan
    return float(list(REGIME).index(names[0])) if len(names) == 1 and separated else float(len(REGIME))


def _best_text(best: str, not_separated: str) -> str:
    """A 'best' cell's label: the winner, '≈' and the arms it is not separated from."""
    if not best:
        return NOT_RUN
    names = [SHORT[k] for k in best.split(" = ")]
    rest = [SHORT[k] for k in not_separated.split(", ") if k and SHORT[k] not in names]
    if not rest:
        return " = ".join(names)
    return " = ".join(names) + ("\n≈ the rest" if len(rest) + len(names) == len(REGIME) else "\n≈ " + ",".join(rest))


def knob_verdicts(selected: pd.DataFrame, arms: Mapping[str, Mapping]) -> pd.DataFrame:
    """Per knob setting (fingerprint, fidelity), over every ratio the map holds: the arm with the
    highest WA (mean over ratios of each ratio's mean over seeds, as a claim's effect) and the
    arms it does not beat under the claims rule (claims.decide: pairs by ratio and seed, the
    stratified bootstrap interval above 0, at least 3 seeds a ratio and 6 pairs in all), so a
    winner on one seed, or on 5 seeds of one ratio, is never called distinguishable."""
    rows = {name: arm_rows(selected, spec) for name, spec in arms.items()}
    knobs = sorted({(f, d) for r in rows.values() if len(r) for f, d in zip(r["fingerprint"], r["fidelity"])})
    out = []
    for fingerprint, fidelity in knobs:
        at = {n: r[np.isclose(r["fingerprint"], fingerprint) & np.isclose(r["fidelity"], fidelity)] for n, r in rows.items()}
        means = {n: r.groupby("ratio")["test_wa"].mean().mean() for n, r in at.items() if len(r)}
        best = max(means, key=lambda n: (means[n], -list(arms).index(n)))  # ties: REGIME's order
        behind = []
        for name in means:
            if name == best:
                continue
            pairs = paired_cells(at[best], at[name])
            pairs = pairs.assign(cell=pairs["ratio"].map("{:g}".format), a=100 * pairs["a"], b=100 * pairs["b"])
            if decide(pairs).verdict != SUPPORTED:
                behind.append(name)
        out.append({"fingerprint": fingerprint, "fidelity": fidelity, "best_over_ratios": best,
                    "best_over_ratios_wa": means[best], "not_separated_from": ", ".join(behind),
                    "ratios_judged": " ".join(f"{r:g}" for r in sorted(set(at[best]["ratio"])))})
    return pd.DataFrame(out, columns=["fingerprint", "fidelity", "best_over_ratios", "best_over_ratios_wa",
                                      "not_separated_from", "ratios_judged"])


def regime_table(results: Results, knobs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (ratio, fingerprint, fidelity): WA (mean and 95 % interval over seeds) and BA
    of USB, ASB, FFR and FFR's stage 1, the best of the four by mean WA, the knob setting's
    winner over the ratios and the arms it is not separated from (knob_verdicts), FFR's WA minus
    each other's, and (from the knob grid, when given) the real-vs-synthetic detector's accuracy
    and the synthetic-only transfer WA."""
    arms = {k: {f: v for f, v in spec.items() if f not in ("fingerprint", "fidelity")} for k, spec in REGIME.items()}
    keys = ["ratio", "fingerprint", "fidelity"]
    long = summarise(results, arms, by=keys)
    if long.empty:
        return pd.DataFrame(columns=keys)
    wide = long.pivot_table(index=keys, columns="row", values=["test_wa_mean", "test_ba_mean", "n"])
    out = pd.DataFrame(index=wide.index)
    ci = long.pivot_table(index=keys, columns="row", values=["test_wa_ci_lo", "test_wa_ci_hi"])
    for k in REGIME:
        tag = k.lower().replace(" ", "_")
        out[f"wa_{tag}"] = wide["test_wa_mean"].get(k, np.nan)
        out[f"wa_{tag}_lo"] = ci["test_wa_ci_lo"].get(k, np.nan) if "test_wa_ci_lo" in ci else np.nan
        out[f"wa_{tag}_hi"] = ci["test_wa_ci_hi"].get(k, np.nan) if "test_wa_ci_hi" in ci else np.nan
        out[f"ba_{tag}"] = wide["test_ba_mean"].get(k, np.nan)
        out[f"n_{tag}"] = wide["n"].get(k, 0)
    was = out[[f"wa_{k.lower().replace(' ', '_')}" for k in REGIME]]
    out["best"] = [" = ".join(k for k, v in zip(REGIME, row) if np.isfinite(v) and v == np.nanmax(row))
                   if np.isfinite(row).any() else "" for row in was.to_numpy()]
    out = out.reset_index().merge(knob_verdicts(results.selected, arms), on=["fingerprint", "fidelity"], how="left")
    out = out.set_index(keys)
    for k in ("usb", "asb", "ffr_stage_1"):
        out[f"ffr_minus_{k}"] = out["wa_ffr"] - out[f"wa_{k}"]
    out = out.reset_index()
    if knobs is not None:
        k = knobs[knobs["layout"] == "binary"][["fingerprint", "fidelity", "detector_acc", "transfer_wa"]]
        k = k.rename(columns={"transfer_wa": "knob_grid_transfer_wa"})
        out = out.merge(k, on=["fingerprint", "fidelity"], how="left")
    return out


@BUILDERS.register("ours_regime_map")
def regime_map(results: Results, out: str | Path, meta: Mapping, knobs_file: str | Path = KNOBS_FILE) -> Artifact:
    """Heat maps over (fingerprint, fidelity), a row per ratio: the best of USB/ASB/FFR/stage 1,
    FFR's WA minus each other's, the detector accuracy (knob grid) and stage 1's own transfer."""
    knobs = pd.read_csv(knobs_file) if Path(knobs_file).is_file() else None
    table = regime_table(results, knobs)
    ratios = sorted(set(table["ratio"])) if len(table) else []
    panels = [("best", "highest mean WA"), ("ffr_minus_usb", "WA: FFR - USB"), ("ffr_minus_asb", "WA: FFR - ASB"),
              ("ffr_minus_ffr_stage_1", "WA: FFR - stage 1 alone"), ("wa_ffr_stage_1", "stage 1 alone: real-test WA"),
              ("detector_acc", "knob grid: detector accuracy"), ("knob_grid_transfer_wa", "knob grid: transfer WA")]
    per_row = 4  # panels a row: the figure stays about 11 inches wide, legible at 100 % zoom
    rows_per_ratio = -(-len(panels) // per_row)
    fig, axes = plt.subplots(rows_per_ratio * max(len(ratios), 1), per_row,
                             figsize=(2.9 * per_row, 2.9 * rows_per_ratio * max(len(ratios), 1)), squeeze=False)
    colours = ListedColormap(["tab:green", "tab:orange", "tab:red", "tab:purple", "lightgray"])
    used = set()
    for i, ratio in enumerate(ratios):
        part = table[table["ratio"] == ratio]
        for j, (col, title) in enumerate(panels):
            ax = axes[i * rows_per_ratio + j // per_row, j % per_row]
            used.add(ax)
            if col == "best":
                code = part.assign(c=[_best_code(b) for b in part["best"]],
                                   t=[" = ".join(SHORT[k] for k in b.split(" = ")) if b else NOT_RUN for b in part["best"]])
                pivot = code.pivot_table(index="fingerprint", columns="fidelity", values="c", dropna=False)
                text = code.pivot_table(index="fingerprint", columns="fidelity", values="t", aggfunc="first")
                heat_map(ax, pivot, f"r={ratio:g}: {title}", 0, len(REGIME), colours,
                         text=text.reindex_like(pivot).fillna(NOT_RUN), colorbar=False)
            elif col in part and part[col].notna().any():
                pivot = part.pivot_table(index="fingerprint", columns="fidelity", values=col, dropna=False)
                signed = col.startswith("ffr_minus")
                heat_map(ax, pivot, f"r={ratio:g}: {title}", -1 if signed else 0, 1, "RdBu" if signed else "viridis",
                         fmt="{:+.2f}" if signed else "{:.2f}")
            else:
                ax.set_axis_off()
                ax.set_title(f"{title}: not measured", fontsize=10)
            ax.set_xlabel("fidelity", fontsize=9)
            ax.set_ylabel("fingerprint", fontsize=9)
    if ratios and len(panels) % per_row:  # the first block's free slot: the winner over the ratios, judged
        ax = axes[rows_per_ratio - 1, per_row - 1]
        used.add(ax)
        knob = table.drop_duplicates(["fingerprint", "fidelity"])
        code = knob.assign(c=[_best_code(b, not sep) for b, sep in zip(knob["best_over_ratios"], knob["not_separated_from"])],
                           t=[_best_text(b, sep) for b, sep in zip(knob["best_over_ratios"], knob["not_separated_from"])])
        pivot = code.pivot_table(index="fingerprint", columns="fidelity", values="c", dropna=False)
        text = code.pivot_table(index="fingerprint", columns="fidelity", values="t", aggfunc="first")
        heat_map(ax, pivot, "over the ratios: winner\n(grey: ≈ not separated)", 0, len(REGIME), colours,
                 text=text.reindex_like(pivot).fillna(NOT_RUN), colorbar=False)
        ax.set_xlabel("fidelity", fontsize=9)
        ax.set_ylabel("fingerprint", fontsize=9)
    for ax in axes.flat:
        if ax not in used:
            ax.set_axis_off()
    fig.suptitle(f"ours ({results.profile}): the regime map over the generator's knobs", fontsize=11)
    fig.tight_layout()
    art = Artifact("ours_regime_map", table, None, fig)
    return save(art, out, sidecar(results, REGIME, meta, knobs=Path(knobs_file).name if knobs is not None else None))


@BUILDERS.register("claims_03")
def claims_table_03(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    """Claims 2, 3, 4 and 7 on this notebook's store: the claims engine's rows for it (figures/claims.csv
    holds every claim on every store)."""
    art = Artifact("claims_03", judge(results, claims_of("03")))
    return save(art, out, sidecar(results, None, meta, rule=RULE))


NOTEBOOK_03 = ("eccv_table1_stage_order", "eccv_table2_pretraining", "eccv_table3_synthetic_test",
               "eccv_table4_corruption", "eccv_table5_prompts", "eccv_table8_vit", "iclr_figure5_scaling",
               "ours_regime_map", "claims_03", "selection_03")
__all__ = ["MODE_SPECS", "NOTEBOOK_03"]
