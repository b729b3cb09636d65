"""Methods without group labels at the paper's scale (issue #24): the paper-labelfree grid crosses
JTT and AFR with the four modes and shares everything else with `paper`; claim L (ours) is
judged by the claims engine on a store of such runs."""

from __future__ import annotations

from collections import Counter

from ffr_lib import paper_claims as P
from ffr_lib.claims import SUPPORTED, judge
from ffr_lib.results import records_frame
from ffr_lib.sweeps.plan import closure, count_trainings
from ffr_lib.sweeps.profiles import FFR_LRS, LABEL_FREE, LABEL_FREE_HPARAMS, PAPER_BASE, PRE_LRS, get_profile
from ffr_lib.sweeps.selection import select
from ffr_lib.tables import SHARES, prepare
from ffr_lib.training.config import RunConfig
from ffr_lib.training.methods import METHODS


def test_label_free_methods_read_no_group_labels():
    assert LABEL_FREE == ("jtt", "afr") and not any(METHODS[m].uses_groups for m in LABEL_FREE)
    assert METHODS["groupdro"].uses_groups and METHODS["dfr"].uses_groups


def test_paper_labelfree_crosses_both_methods_with_the_four_modes_and_shares_the_rest():
    runs = get_profile("paper-labelfree").configs()
    cells = Counter((c.mode, c.method) for c in runs)
    assert set(cells) == {(m, x) for m in ("none", "usb", "asb", "ffr") for x in LABEL_FREE}
    # per ratio and seed: None/USB/ASB 3 lrs, FFR len(PRE_LRS) stage-1 x len(FFR_LRS) stage-2 lrs (AFR: x frozen BN)
    n1, n2 = len(PRE_LRS), len(FFR_LRS)
    assert cells[("none", "jtt")] == 2 * 5 * 3 * 2 and cells[("ffr", "jtt")] == 2 * 5 * n1 * n2 * 2
    assert cells[("none", "afr")] == 2 * 5 * 3 * 3 and cells[("ffr", "afr")] == 2 * 5 * n1 * n2 * 2 * 3
    assert {dict(c.hparams)["upweight"] for c in runs if c.method == "jtt"} == {20.0, 50.0}
    assert {tuple(sorted(dict(c.hparams).items())) for c in runs if c.method == "afr"} == {
        tuple(sorted(h.items())) for h in LABEL_FREE_HPARAMS["afr"]}
    assert all(c.val_floor == PAPER_BASE.val_floor and c.dataset == "shapes-binary" for c in runs)
    # every dependency (FFR's stage 1, AFR's ERM bases) is a run of `paper`, whose records the store copies
    own = {c.hash for c in runs}
    assert SHARES["paper-labelfree"] == ("paper",)
    assert set(closure(runs)) - own <= set(closure(get_profile("paper").configs()))
    counts = count_trainings(runs)
    assert counts["trainings_staged"] < counts["trainings_with_reuse"]  # stage 2 only from the chosen stage 1


def _record(mode: str, method: str, ratio: float, seed: int, lr: float, hparams: dict, test_wa: float) -> dict:
    config = RunConfig(dataset="shapes-binary", ratio=ratio, mode=mode, method=method, lr=lr, seed=seed,
                       hparams=hparams, fingerprint=0.3, fidelity=0.75, pre_lr=1e-3).canonical()
    return {"hash": config.hash, "config": config.to_dict(), "status": "ok",
            "val": {"wa": test_wa, "ba": test_wa}, "test": {"wa": test_wa, "ba": test_wa}}


def test_claim_l_is_judged_on_a_store_of_label_free_runs():
    """Hand-made records: 2 ratios x 3 seeds of JTT and AFR with None and FFR, two settings each
    (the better by validation is chosen); FFR is 5 points ahead in every pair for JTT and 5
    behind for AFR: JTT's comparison is supported, AFR's not, so the claim is not supported."""
    records = []
    for ratio in (0.99, 0.999):
        for seed in range(3):
            for mode, lift in (("none", 0.0), ("ffr", 0.05)):
                records += [_record(mode, "jtt", ratio, seed, 1e-3, {"upweight": 20.0}, 0.5 + lift + 0.01 * seed),
                            _record(mode, "jtt", ratio, seed, 1e-3, {"upweight": 50.0}, 0.4)]
                records += [_record(mode, "afr", ratio, seed, 1e-3, {"gamma": 1.0}, 0.6 - lift),
                            _record(mode, "afr", ratio, seed, 1e-3, {"gamma": 4.0}, 0.3)]
    selected = prepare(select(records_frame(records)))
    assert len(selected) == 2 * 3 * 2 * 2 and set(selected["hp_upweight"].dropna()) == {20.0}
    claim = next(c for c in P.CLAIMS if c.number == "L")
    table = judge(selected, [claim], store="hand-made", n_boot=200)
    rows = table.set_index("comparison")
    assert list(rows.index) == ["FFR+JTT > None+JTT", "FFR+AFR > None+AFR"]
    assert rows.loc["FFR+JTT > None+JTT", "verdict"] == SUPPORTED
    assert rows.loc["FFR+JTT > None+JTT", "effect"] == 5.0 and rows.loc["FFR+JTT > None+JTT", "cells"] == 2
    assert rows.loc["FFR+AFR > None+AFR", "effect"] == -5.0
    assert set(table["claim_verdict"]) == {"not supported"} and set(table["paper_ref"]) == {P.OURS}


def test_a_staged_sweep_of_ffr_with_jtt_and_afr(tmp_path):
    """FFR + JTT and FFR + AFR from two stage-1 lrs on the tiny world: the sweep trains both
    stage-1 candidates, chooses one, then JTT and AFR's ERM base and refit from it only."""
    from dataclasses import replace

    from ffr_lib.results import ResultStore
    from ffr_lib.sweeps.grids import grid
    from ffr_lib.sweeps.profiles import TINY_WORLD
    from ffr_lib.sweeps.sweep import run_sweep

    base = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8, batch_size=64, mode="ffr", fingerprint=0.3,
                     hparams={"id_epochs": 1, "upweight": 20.0, "gamma": 4.0, "reg": 0.0})
    configs = grid(base, method=LABEL_FREE, pre_lr=(1e-3, 3e-3)).configs()
    assert len(configs) == 4
    summary = run_sweep(configs, str(tmp_path), progress=False, threads=1)
    assert not summary["errors"] and summary["failed"] == 0 and summary["deferred"] == 0
    store = ResultStore(tmp_path)
    chosen = {c.pre_lr for c in configs if store.has(c.hash)}
    assert len(chosen) == 1  # stage 2 only from the chosen stage-1 lr
    # 2 stage-1 runs, then JTT, AFR and AFR's ERM base from the chosen one
    assert len(store.hashes()) == 2 + 3
    afr = next(c for c in configs if c.method == "afr" and c.pre_lr in chosen)
    assert store.get(afr.hash)["base"] == replace(afr, method="erm").canonical().hash
