"""The regime map's verdict per knob setting (paper_figures/ablations.knob_verdicts): the winner
over the ratios and the arms it does not beat under the claims rule, on hand-made records."""

from dataclasses import replace

import pandas as pd

from ffr_lib.paper_figures.ablations import knob_verdicts
from ffr_lib.results import records_frame
from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.sweeps.selection import select
from ffr_lib.tables import prepare
from ffr_lib.training.config import RunConfig

BASE = RunConfig(data=TINY_WORLD, epochs=1, width=8, pre_lr=1e-3)
ARMS = {"USB": {"mode": "usb"}, "ASB": {"mode": "asb"}}


def record(config: RunConfig, wa: float) -> dict:
    c = config.canonical()
    metrics = {"wa": wa, "ba": wa, "avg": wa, "wca": wa, "acc": wa, "groups": {}}
    return {"hash": c.hash, "config": c.to_dict(), "status": "ok", "test": metrics, "val": metrics,
            "test_synthetic": metrics}


def frame(wa: dict) -> pd.DataFrame:
    """wa: (mode, fingerprint, fidelity, ratio) -> per-seed WA."""
    recs = [record(replace(BASE, mode=m, fingerprint=f, fidelity=d, ratio=r, seed=s), v)
            for (m, f, d, r), values in wa.items() for s, v in enumerate(values)]
    return prepare(select(records_frame(recs), "val_worst_group"))


def test_a_winner_on_six_positive_pairs_is_separated_and_a_mixed_one_is_not():
    wa = {
        # knob (0.3, 0.75): ASB beats USB by 0.10 in every seed at both ratios: 6 positive pairs
        ("usb", 0.3, 0.75, 0.99): [0.50, 0.52, 0.54], ("asb", 0.3, 0.75, 0.99): [0.60, 0.62, 0.64],
        ("usb", 0.3, 0.75, 0.999): [0.40, 0.41, 0.42], ("asb", 0.3, 0.75, 0.999): [0.50, 0.51, 0.52],
        # knob (0, 0): USB's mean is higher (0.60 vs 0.55 over the ratios) but two seeds reverse it
        ("usb", 0.0, 0.0, 0.99): [0.90, 0.30, 0.60], ("asb", 0.0, 0.0, 0.99): [0.50, 0.60, 0.55],
        ("usb", 0.0, 0.0, 0.999): [0.90, 0.30, 0.60], ("asb", 0.0, 0.0, 0.999): [0.50, 0.60, 0.55],
    }
    v = knob_verdicts(frame(wa), ARMS).set_index(["fingerprint", "fidelity"])
    sure, mixed = v.loc[(0.3, 0.75)], v.loc[(0.0, 0.0)]
    assert sure["best_over_ratios"] == "ASB" and sure["not_separated_from"] == ""
    assert abs(sure["best_over_ratios_wa"] - (0.62 + 0.51) / 2) < 1e-12 and sure["ratios_judged"] == "0.99 0.999"
    assert mixed["best_over_ratios"] == "USB" and mixed["not_separated_from"] == "ASB"


def test_five_seeds_of_one_ratio_never_separate_a_winner():
    # 5 positive pairs: the sign test's p = 1/32 > 0.025, so the rule asks for 6 (claims.MIN_PAIRS)
    wa = {("usb", 0.3, 0.75, 0.99): [0.1, 0.2, 0.3, 0.4, 0.5], ("asb", 0.3, 0.75, 0.99): [0.6, 0.7, 0.8, 0.9, 1.0]}
    v = knob_verdicts(frame(wa), ARMS).iloc[0]
    assert v["best_over_ratios"] == "ASB" and v["not_separated_from"] == "USB" and v["ratios_judged"] == "0.99"


def test_a_tie_goes_to_the_earlier_arm_and_stays_unseparated():
    wa = {("usb", 0.3, 0.75, 0.99): [0.5] * 3, ("asb", 0.3, 0.75, 0.99): [0.5] * 3,
          ("usb", 0.3, 0.75, 0.999): [0.5] * 3, ("asb", 0.3, 0.75, 0.999): [0.5] * 3}
    v = knob_verdicts(frame(wa), ARMS).iloc[0]
    assert v["best_over_ratios"] == "USB" and v["not_separated_from"] == "ASB"
