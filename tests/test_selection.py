"""Selection's tie-break chain, the stage-1 choice and the selection report, on hand-built frames."""

import numpy as np
import pandas as pd

from ffr_lib.sweeps.selection import rank_settings, report_summary, select, selection_report


def _frame(rows):
    base = {"status": "ok", "dataset": "d", "ratio": 0.99, "mode": "none", "order": "1-2", "method": "erm",
            "recipe": "balanced", "freeze_bn": False, "pre_lr": np.nan, "weight_decay": 1e-5, "model": "m"}
    return pd.DataFrame([{**base, "hash": f"h{i}", **r} for i, r in enumerate(rows)])


def _runs(lr, was, bas=None, losses=None, **extra):
    bas = bas or [0.5] * len(was)
    losses = losses or [1.0] * len(was)
    return [{"lr": lr, "seed": s, "val_wa": w, "val_ba": b, "val_loss": loss, "test_wa": 0.1 * s, **extra}
            for s, (w, b, loss) in enumerate(zip(was, bas, losses))]


def test_the_best_mean_validation_wa_wins():
    df = _frame(_runs(1e-3, [0.5, 0.7]) + _runs(3e-4, [0.6, 0.7]))
    assert set(select(df)["lr"]) == {3e-4}


def test_ties_on_wa_go_to_ba_then_loss_then_the_smaller_lr_never_to_sort_order():
    # WA ties (mean 0.6): BA decides
    df = _frame(_runs(1e-3, [0.6, 0.6], bas=[0.8, 0.8]) + _runs(3e-4, [0.6, 0.6], bas=[0.7, 0.7]))
    assert set(select(df)["lr"]) == {1e-3}
    # WA and BA tie: the lower validation loss decides
    df = _frame(_runs(1e-3, [0.6, 0.6], losses=[0.9, 0.9]) + _runs(3e-4, [0.6, 0.6], losses=[0.4, 0.4]))
    assert set(select(df)["lr"]) == {3e-4}
    # all equal: the smaller lr, though "0.0003" > "0.001" as strings and 3e-4 sorts first as a string too
    for lrs in ((3e-4, 1e-3), (1e-3, 3e-4)):
        df = _frame(_runs(lrs[0], [0.0, 0.0]) + _runs(lrs[1], [0.0, 0.0]))
        assert set(select(df)["lr"]) == {3e-4}
    df = _frame(_runs(1e-2, [0.0, 0.0]) + _runs(2e-3, [0.0, 0.0]))  # "0.002" > "0.01" as strings
    assert set(select(df)["lr"]) == {2e-3}


def test_rank_settings_says_which_key_broke_the_tie():
    df = _frame(_runs(1e-3, [0.6], bas=[0.8]) + _runs(3e-4, [0.6], bas=[0.7]))
    ranked = rank_settings(df, ["dataset"], [("val_wa", 1), ("val_ba", 1), ("val_loss", -1)])
    assert ranked.loc[ranked["rank"] == 0, "tie_broken_by"].item() == "val_ba"
    df = _frame(_runs(1e-3, [0.6]) + _runs(3e-4, [0.6]))
    ranked = rank_settings(df, ["dataset"], [("val_wa", 1), ("val_ba", 1), ("val_loss", -1)])
    assert ranked.loc[ranked["rank"] == 0, "tie_broken_by"].item() == "setting order"


def test_missing_loss_ties_and_the_chain_goes_on():
    df = _frame(_runs(1e-3, [0.6], losses=[np.nan]) + _runs(3e-4, [0.6], losses=[np.nan]))
    assert set(select(df)["lr"]) == {3e-4}


def _ffr(lr, pre_lr, was, **extra):
    return [dict(r, mode="ffr", order="1-2", pre_lr=pre_lr) for r in _runs(lr, was, **extra)]


def _stage1(lr, was, **extra):
    return [dict(r, mode="ffr", order="1", method="erm") for r in _runs(lr, was, **extra)]


def test_stage1_is_chosen_first_among_the_two_stage_runs_candidates():
    rows = (_stage1(1e-3, [0.5, 0.5]) + _stage1(3e-3, [0.7, 0.7]) + _stage1(1e-2, [0.9, 0.9])  # 1e-2: no stage 2
            + _ffr(1e-4, 1e-3, [0.95, 0.95]) + _ffr(1e-4, 3e-3, [0.6, 0.6]) + _ffr(1e-5, 3e-3, [0.65, 0.65]))
    chosen = select(_frame(rows))
    two = chosen[chosen["order"] == "1-2"]
    assert set(two["pre_lr"]) == {3e-3} and set(two["lr"]) == {1e-5}  # never stage 2 from the better stage-2 WA at 1e-3


def test_the_report_flags_edges_ties_and_degenerate_runs():
    rows = (_runs(1e-3, [0.0, 0.0], bas=[0.6, 0.6], degenerate=True) + _runs(3e-4, [0.0, 0.0], bas=[0.5, 0.5],
                                                                            degenerate=True)
            + [dict(r, ratio=0.9) for r in _runs(1e-3, [0.5, 0.5]) + _runs(3e-4, [0.7, 0.7]) + _runs(1e-4, [0.6, 0.6])])
    report = selection_report(_frame(rows)).sort_values("ratio")
    low, high = report.iloc[0], report.iloc[1]
    assert (low["ratio"], low["chosen"], low["edge"], low["tie_broken_by"]) == (0.9, 3e-4, "", "")
    assert low["candidates"] == "0.0001 0.0003 0.001"
    assert (high["chosen"], high["edge"], high["tie_broken_by"]) == (1e-3, "top", "val_ba")
    assert (high["degenerate_chosen"], high["degenerate_all"]) == (2, 4)
    assert report_summary(report) == {"rows": 2, "edges": 1, "ties": 1, "degenerate_chosen": 2}


def test_the_report_shows_stage1_rows_and_whether_a_bottom_edge_is_the_stage1_model():
    rows = (_stage1(1e-3, [0.7, 0.7]) + _stage1(3e-3, [0.8, 0.8])
            + _ffr(1e-5, 3e-3, [0.8, 0.8]) + _ffr(1e-4, 3e-3, [0.6, 0.6]) + _ffr(1e-4, 1e-3, [0.6, 0.6]))
    report = selection_report(_frame(rows))
    stage1 = report[report["hyperparameter"] == "pre_lr"].iloc[0]
    assert (stage1["mode"], stage1["chosen"], stage1["edge"]) == ("ffr[1]", 3e-3, "top")
    two = report[(report["hyperparameter"] == "lr") & (report["mode"] == "ffr")].iloc[0]
    assert (two["chosen"], two["edge"], two["stage1_val_wa"]) == (1e-5, "bottom", 0.8)


def test_a_staged_store_still_reports_the_stage1_choice_over_every_candidate():
    """After a staged sweep the two-stage runs all start from the chosen stage 1; the report
    still shows the stage-1 lr against every candidate it was chosen from."""
    rows = (_stage1(3e-4, [0.6, 0.6]) + _stage1(1e-3, [0.8, 0.8]) + _stage1(3e-3, [0.7, 0.7])
            + _ffr(1e-4, 1e-3, [0.8, 0.8]) + _ffr(1e-5, 1e-3, [0.7, 0.7]))
    report = selection_report(_frame(rows))
    stage1 = report[report["hyperparameter"] == "pre_lr"].iloc[0]
    assert (stage1["chosen"], stage1["candidates"], stage1["edge"]) == (1e-3, "0.0003 0.001 0.003", "")
