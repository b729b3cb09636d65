"""The paper's claims (TARGETS.md, "The claims", 1-8), one declarative entry each, for the claims
engine (ffr_lib.claims): the arms compared, the cells, the direction and where the paper says it,
with the paper's own number for the comparison where paper_numbers.yaml holds it. Claims 6b and
6c are neighbours of claim 6 that the ECCV text states (section 4.2, figure 4's caption) and
TARGETS.md does not list. Claim 8 is Theorem 1, checked on count tables (`theorem1_check`, the
check of notebook 01). Claim L is ours, not the paper's (issue #24): whether FFR's pretraining
also lifts methods that never read group labels in training (JTT, AFR; profile paper-labelfree)."""

from __future__ import annotations

import itertools

import numpy as np

from . import theory as T
from .claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Claim, Comparison, Evidence, PaperRef
from .tables import STAGE1, arm, mode_arms

M = mode_arms("erm")
FFR = M["FFR"]
HIGH_BIAS = {"ratio": (0.99, 0.999)}
SD_FREE = {"groupdro": "GroupDRO", "resampling": "Resampling", "dfr": "DFR"}
LABEL_FREE = {"jtt": "JTT", "afr": "AFR"}  # no group labels in training (training/methods/jtt.py, afr.py)
OURS = "not in the paper: our claim (issue #24)"
T1 = "ICLR table 1 (99.9 % only), mean over its 3 datasets"
# exhaustive theorem check: real tables with counts 0..R per (y, b), synthetic 0..S per (y, b)
THEOREM_GRIDS = ((2, 4, 4), (3, 2, 2))  # (classes, R, S); two bias groups


def _iclr(method: str, mode: str) -> dict:
    return {"method": method, "mode": mode}


def theorem1_check() -> dict[str, Evidence]:
    """Theorem 1 on count tables, two checks: (a) exhaustive: for every biased real table of
    THEOREM_GRIDS, the least worst-cell TV of Y on (B, G) over every synthetic table is above 0
    and never below the closed form rho*; (b) the embedded world's real splits (both layouts,
    five ratios) have rho* > 0, so no augmentation of them reaches independence. Supported when
    every table holds, not supported on any counterexample."""
    best, holds, counter = [], 0, 0
    for n_y, top, syn in THEOREM_GRIDS:
        for counts in itertools.product(range(top + 1), repeat=2 * n_y):
            real = np.array(counts).reshape(n_y, 2)
            present = real[:, real.sum(axis=0) > 0]
            if present.shape[1] < 2 or np.ptp(present / present.sum(axis=0), axis=1).max() == 0:
                continue  # unbiased: P(Y | b, real) is the same in every bias group
            tv, _ = T.exhaustive_optimum(real, syn)
            best.append(tv)
            counter += tv <= 1e-12
            floor = T.two_class_floor(real) if n_y == 2 else T.augmentation_floor(real).radius
            holds += tv > 1e-12 and tv >= floor - 1e-9
    world = T.world_dependence().drop_duplicates(["dataset", "ratio"])["floor"].to_numpy()
    out = {}
    for label, values, ok, bad in ((EXHAUSTIVE, np.array(best), holds, counter),
                                   (WORLD, world, int((world > 1e-12).sum()), int((world <= 1e-12).sum()))):
        verdict = NOT_SUPPORTED if bad else SUPPORTED if ok == len(values) else INCONCLUSIVE
        note = (f"{bad} counterexample(s)" if bad else "" if verdict == SUPPORTED
                else f"{len(values) - ok} table(s) below the closed form")
        out[label] = Evidence(verdict, float(values.min()), cells=len(values), holds=ok, note=note)
    return out


EXHAUSTIVE = ("least worst-cell TV over every augmentation > 0: every biased 2x2 real table (counts 0-4) with every "
              "synthetic table (0-4 per group), every biased 3x2 (0-2, 0-2)")
WORLD = "closed-form floor rho* > 0 on the embedded world's real splits (2 layouts x 5 ratios)"

CLAIMS: tuple[Claim, ...] = (
    Claim("1", "With ERM at high bias (99 %, 99.9 %), FFR's WA is above USB's and ASB's.", (
        Comparison("FFR > USB", FFR, M["USB"], paper=PaperRef(T1, "iclr_table1", _iclr("erm", "ffr"), _iclr("erm", "usb"))),
        Comparison("FFR > ASB", FFR, M["ASB"], paper=PaperRef(T1, "iclr_table1", _iclr("erm", "ffr"), _iclr("erm", "asb"))),
    ), where=HIGH_BIAS),
    Claim("2", "Stage order: 1 then 2 beats 2 then 1, stage 1 alone and stage 2 alone on WA.", (
        Comparison("1-2 > 2-1", FFR, arm(FFR, order="2-1"),
                   paper=PaperRef("ECCV table 1", "eccv_table1", {"row": "1 then 2 (FFR)"}, {"row": "2 then 1"})),
        Comparison("1-2 > stage 1 only", FFR, arm(STAGE1),
                   paper=PaperRef("ECCV table 1", "eccv_table1", {"row": "1 then 2 (FFR)"}, {"row": "stage 1 only"})),
        Comparison("1-2 > stage 2 only (None)", FFR, M["None"],
                   paper=PaperRef("ECCV table 1", "eccv_table1", {"row": "1 then 2 (FFR)"}, {"row": "stage 2 only"})),
    ), scope=arm(FFR, order="2-1")),
    Claim("3", "Balanced synthetic pretraining beats biased synthetic pretraining, which beats none.", (
        Comparison("balanced > biased", FFR, arm(FFR, recipe="biased"),
                   paper=PaperRef("ECCV table 2", "eccv_table2", {"row": "FFR balanced pretraining"},
                                  {"row": "FFR biased pretraining"})),
        Comparison("biased > none", arm(FFR, recipe="biased"), M["None"],
                   paper=PaperRef("ECCV table 2", "eccv_table2", {"row": "FFR biased pretraining"},
                                  {"row": "no synthetic"})),
    ), scope=arm(FFR, recipe="biased")),
    Claim("4", "With corrupted synthetic images (severity 5) FFR still beats USB and ASB.", (
        Comparison("FFR > USB at severity 5", arm(FFR, corruption=5), arm(M["USB"], corruption=5),
                   paper=PaperRef("ECCV table 4", "eccv_table4", {"row": "FFR", "severity": 5},
                                  {"row": "USB", "severity": 5})),
        Comparison("FFR > ASB at severity 5", arm(FFR, corruption=5), arm(M["ASB"], corruption=5),
                   paper=PaperRef("ECCV table 4", "eccv_table4", {"row": "FFR", "severity": 5},
                                  {"row": "ASB", "severity": 5})),
    ), scope=arm(FFR, corruption=5)),
    Claim("5", "USB/ASB embeddings separate real from synthetic more than FFR's do (real-vs-synthetic linear probe "
               "accuracy on penultimate features, notebook 05).", (
        Comparison("USB > FFR", {"mode": "usb"}, {"mode": "ffr"}, "probe", PaperRef("ECCV figure 5 (t-SNE, no number)")),
        Comparison("ASB > FFR", {"mode": "asb"}, {"mode": "ffr"}, "probe", PaperRef("ECCV figure 5 (t-SNE, no number)")),
    ), evidence="probe", unit="probe accuracy points"),
    Claim("6", "FFR as stage 1 lifts GroupDRO, Resampling and DFR.", tuple(
        Comparison(f"FFR+{name} > None+{name}", mode_arms(m)["FFR"], mode_arms(m)["None"],
                   paper=PaperRef("ECCV figure 4 text (mean over datasets and ratios)", "eccv_figure4_quotes",
                                  {"row": f"FFR lifts {name} WA by (points)"}))
        for m, name in SD_FREE.items()
    )),
    Claim("6b", "FFR with ERM beats USB and ASB combined with GroupDRO, Resampling or DFR (ECCV section 4.2: "
                "'even when combined with SD-Free methods, ASB and USB still lag behind FFR').", tuple(
        Comparison(f"FFR+ERM > {mode}+{name}", FFR, mode_arms(m)[mode],
                   paper=PaperRef("ECCV section 4.2: FFR+ERM 70.3 vs ASB with SD-free methods 69.0 (method not "
                                  "stated)" if mode == "ASB" else "ECCV section 4.2 (no number for USB)"))
        for mode in ("ASB", "USB") for m, name in SD_FREE.items()
    )),
    Claim("6c", "FFR lifts GroupDRO, Resampling and DFR more than USB and ASB do (ECCV figure 4 caption: 'our method "
                "(FFR) in column four is best at improving the performance of non-synthetic-data augmentation "
                "methods').", tuple(
        Comparison(f"FFR+{name} > {mode}+{name}", mode_arms(m)["FFR"], mode_arms(m)[mode],
                   paper=PaperRef("ECCV figure 4 caption (no number)"))
        for m, name in SD_FREE.items() for mode in ("ASB", "USB")
    )),
    Claim("7", "Bias-aware prompts beat bias-agnostic prompts.", (
        Comparison("{bias} {class} > {class}", FFR, arm(FFR, recipe="agnostic"),
                   paper=PaperRef("ECCV table 5", "eccv_table5", {"row": "FFR, A photo of {bias} {class}"},
                                  {"row": "FFR, A photo of {class}"})),
    ), scope=arm(FFR, recipe="agnostic")),
    Claim("8", "Theorem 1: no augmentation of a biased set with synthetic data makes Y independent of (B, G).", (
        Comparison(EXHAUSTIVE, paper=PaperRef("ECCV Theorem 1, appendix A (a proof, no number)")),
        Comparison(WORLD, paper=PaperRef("ECCV Theorem 1, appendix A (a proof, no number)")),
    ), evidence="theory", unit="worst-cell TV", check=theorem1_check),
    Claim("L", "Ours, not the paper's: FFR as stage 1 lifts methods that never read group labels in training, JTT and "
               "AFR (a follow-up, DDB, ICCV 2025, argues FFR depends on knowing the bias; FFR's synthetic set still "
               "names the bias in its prompts, but no real image's group label is read).", tuple(
        Comparison(f"FFR+{name} > None+{name}", mode_arms(m)["FFR"], mode_arms(m)["None"], paper=PaperRef(OURS))
        for m, name in LABEL_FREE.items()
    )),
)
BY_NUMBER = {c.number: c for c in CLAIMS}
NOTEBOOK_CLAIMS = {"03": ("2", "3", "4", "7"), "04": ("1", "6", "6b", "6c")}


def claims_of(notebook: str) -> list[Claim]:
    """The claims a notebook prints (notebook 03: 2, 3, 4, 7; 04: 1, 6, 6b, 6c)."""
    return [BY_NUMBER[n] for n in NOTEBOOK_CLAIMS[notebook]]

