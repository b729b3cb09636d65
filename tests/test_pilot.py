"""The pilot's report (paper_figures/pilot.py): arms, seed means, the chosen lr and its edge,
worked by hand on a built frame."""

import pandas as pd
import pytest

from ffr_lib.paper_figures.pilot import pilot_table


def _runs() -> pd.DataFrame:
    rows = []

    def add(mode, order, lr, val_wa, val_ba=0.5, method="erm", test_wa=0.0):
        for seed, jitter in ((0, -0.05), (1, 0.05)):  # two seeds whose mean is the given value
            rows.append(dict(hash=f"{mode}{order}{lr}{seed}{method}", dataset="shapes-binary", ratio=0.999,
                             model="resnet-small", mode=mode, order=order, method=method, lr=lr, seed=seed, pre_lr=1e-3,
                             val_wa=val_wa + jitter, val_ba=val_ba, val_loss=1.0, test_wa=test_wa,
                             test_ba=0.5, best_epoch=seed + 1, degenerate=val_wa == 0))

    for lr, v in ((3e-4, 0.5), (1e-3, 0.7), (3e-3, 0.6)):
        add("none", "1-2", lr, v, test_wa=v - 0.1)  # interior optimum at 1e-3
    for lr, v in ((3e-4, 0.4), (1e-3, 0.5), (3e-3, 0.8)):
        add("asb", "1-2", lr, v)  # top edge
    add("ffr", "1", 1e-3, 0.6, val_ba=0.8)
    add("ffr", "1", 3e-3, 0.6, val_ba=0.9)  # tie on WA, broken by BA: top
    for lr in (1e-3, 1e-4, 1e-5):
        add("ffr", "1-2", lr, 0.0)  # all tied and degenerate: the smaller lr, the bottom
    add("none", "1-2", 1e-2, 0.99, method="groupdro")  # not an ERM run: not a pilot arm
    return pd.DataFrame(rows)


def test_pilot_table_means_choices_and_edges():
    t = pilot_table(_runs())
    assert len(t) == 11 and set(t["n"]) == {2}
    assert list(dict.fromkeys(t["arm"])) == ["none", "asb", "ffr stage 1", "ffr stage 2"]
    none = t[t["arm"] == "none"].set_index("lr")
    assert none["val_wa"].to_dict() == pytest.approx({3e-4: 0.5, 1e-3: 0.7, 3e-3: 0.6})
    assert none.loc[1e-3, "test_wa"] == pytest.approx(0.6) and none.loc[1e-3, "best_epoch"] == 1.5
    picks = {r.arm: (r.lr, r.edge) for r in t[t["chosen"]].itertuples()}
    assert picks == {"none": (1e-3, ""), "asb": (3e-3, "top"), "ffr stage 1": (3e-3, "top"),
                     "ffr stage 2": (1e-5, "bottom")}
    assert t.loc[t["arm"] == "ffr stage 2", "degenerate"].tolist() == [2, 2, 2]
    assert t["chosen"].sum() == 4 and (t.loc[~t["chosen"], "edge"] == "").all()
    # stage 2 started from stage 1 at pre_lr 1e-3, whose validation WA averaged 0.6
    assert t.loc[t["arm"] == "ffr stage 2", "start_val_wa"].tolist() == pytest.approx([0.6] * 3)
    assert t.loc[t["arm"] != "ffr stage 2", "start_val_wa"].isna().all()


def test_pilot_table_of_no_erm_runs_is_empty():
    runs = _runs()
    assert pilot_table(runs[runs["method"] != "erm"]).empty


@pytest.mark.parametrize("profile, choices", [
    ("paper-pilot-cpu", 8),  # one lr per arm (None, ASB, stage 1, stage 2) and layout
    ("paper-pilot", 22),  # 4 cells x (None, USB, ASB, stage 1, stage 2), and the ViT's None and ASB
])
def test_committed_pilot_report_is_rebuilt_from_its_store(tmp_path, profile, choices):
    """figures/pilot/<profile>/pilot.csv comes from results/<profile> alone, every run recorded."""
    from pathlib import Path

    from ffr_lib import tables as T
    from ffr_lib.paper_figures import BUILDERS

    root = Path(__file__).resolve().parents[1]
    committed = root / "figures" / "pilot" / profile / "pilot.csv"
    results = T.load_results(profile, root / "results").require()  # every pilot run recorded
    art = BUILDERS["pilot"](results, tmp_path, {"made_by": "scripts/pilot_report.py", "profile": profile})
    assert (tmp_path / "pilot.csv").read_bytes() == committed.read_bytes()
    assert art.table["chosen"].sum() == choices
