"""README's findings block: generated from figures/claims.csv, never edited by hand; the wording
of the disagreement list on a hand-made claims table; the CLI's write and check."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ffr_lib import claims as C
from ffr_lib import findings as F

ROOT = Path(__file__).resolve().parents[1]


def test_readme_block_is_a_fresh_generation():
    readme = (ROOT / "README.md").read_text()
    assert F.current_block(readme) == F.generate(ROOT / "figures"), (
        "README.md's findings block differs from figures/claims.csv: run python -m ffr_lib.findings --write README.md")


def row(claim, comparison, store, verdict, effect, lo=np.nan, hi=np.nan, cells=5, seeds=3, holds=0, p=np.nan,
        paper=np.nan, ref="", note="", unit="WA points", claim_verdict=None):
    return {"claim": claim, "text": f"claim {claim} text", "comparison": comparison, "store": store, "cells": cells,
            "seeds": seeds, "effect": effect, "ci_lo": lo, "ci_hi": hi, "p_improve": p, "cells_direction_holds": holds,
            "verdict": verdict, "claim_verdict": claim_verdict or verdict, "paper_value": paper, "unit": unit,
            "note": note or np.nan, "paper_ref": ref or np.nan}


@pytest.fixture
def claims() -> pd.DataFrame:
    return pd.DataFrame([
        row("1", "FFR > USB", "paper", C.SUPPORTED, 72.5, 70.6, 74.3, cells=4, holds=4, p=1.0),
        row("1", "FFR > USB", "quick", C.INCONCLUSIVE, 2.0, cells=1, seeds=1, holds=1, p=1.0, note="1 paired seed(s)"),
        row("2", "1-2 > 2-1", "paper", C.NOT_SUPPORTED, -1.7, -2.4, -1.0, holds=1, p=0.27, paper=13.0, ref="ECCV table 1"),
        row("3", "biased > none", "paper", C.INCONCLUSIVE, -2.1, -8.2, 4.5, holds=1, p=0.5, paper=10.7,
            ref="ECCV table 2", note="the interval contains 0"),
        row("4", "FFR > USB at severity 5", "quick-ablations", C.INCONCLUSIVE, 0.0, cells=1, seeds=1, p=0.5,
            note="1 paired seed(s) in a cell (< 3)"),
        row("8", "TV > 0", C.THEORY_STORE, C.SUPPORTED, 0.0167, cells=1148, seeds=np.nan, holds=1148,
            unit="worst-cell TV"),
    ])


def test_disagreements_are_worded_from_the_numbers(claims):
    lines = F.disagreements(claims)
    assert lines[0] == ("- **Reversed** (claim 2, `paper`): 2-1 beats 1-2 by 1.7 WA points [1.0, 2.4]; 1-2 is ahead "
                        "in 1 of 5 cells, P(1-2 > 2-1) = 0.27; the paper reports +13.0 (ECCV table 1).")
    assert lines[1].startswith("- **Not shown** (claim 3, `paper`): biased > none: -2.1 [-8.2, +4.5] WA points "
                               "(the interval contains 0)")
    assert lines[2].startswith("- **Untested at the paper's scale** (claim 4)") and "`quick-ablations`" in lines[2]
    assert len(lines) == 3  # claim 1 (supported on paper) and claim 8 (theorem holds) are not disagreements


def test_render_shows_paper_scale_rows_and_counts_the_quick_ones(claims):
    block = F.render(claims)
    assert block.startswith(F.START) and block.endswith(F.END + "\n")
    table = [line for line in block.splitlines() if line.startswith("| ") and "`" in line]
    assert [t.split(" | ")[2] for t in table] == ["`paper`", "`paper`", "`paper`", "`quick-ablations`",
                                                   f"`{C.THEORY_STORE}`"]  # claim 1's quick row is left out
    assert "| +72.5 [+70.6, +74.3] WA points | 1.00 | 4/4 | supported |" in block
    assert "| 1148 tables | 0.0167 worst-cell TV |" in block
    assert "add 2 comparisons (2 inconclusive)" in block
    assert "- **2.** claim 2 text Not supported on `paper`." in block


def test_render_names_the_stores_in_progress(claims):
    stores = {"paper": {"in_progress": True, "recorded": 660, "runs": 14800}, "quick": {"seeds": [0]}}
    line = "Not judged until their grids are complete (the GPU evidence runs fill them in slices; a grid needs " \
           "fewer runs as staged search discards stage 2s): `paper` (660 of the 14,800 runs it needs so far)."
    assert F.in_progress_line(stores) == line and line in F.render(claims, stores=stores)
    assert F.in_progress_line({"quick": {"seeds": [0]}}) is None and "Not judged" not in F.render(claims)


def test_render_says_so_when_nothing_disagrees(claims):
    assert "- nowhere: every comparison" in F.render(claims.iloc[[0, 1, 5]])


def test_usb_line_from_the_selected_table():
    table = pd.DataFrame({"method": ["ERM"] * 4, "mode": ["None", "USB"] * 2, "dataset": ["a", "a", "b", "b"],
                          "test_wa_mean": [0.1, 0.25, 0.0, 0.0], "n": [3] * 4})
    line = F.usb_line(table)
    assert "+15.0 on a (WA 25.0 against 10.0), +0.0 on b (WA 0.0 against 0.0)" in line
    assert "gains +13.7 to +51.0 over None on its 3 datasets" in line  # ICLR table 1, ERM: USB - None


def test_replace_block_keeps_the_rest_and_refuses_bad_markers():
    text = f"head\n{F.START}\nold\n{F.END}\ntail\n"
    new = F.replace_block(text, f"{F.START}\nnew\n{F.END}\n")
    assert new == f"head\n{F.START}\nnew\n{F.END}\ntail\n"
    assert F.current_block(new) == f"{F.START}\nnew\n{F.END}\n"
    for bad in ("no markers\n", f"{F.END}\n{F.START}\n", f"{F.START}\n{F.START}\n{F.END}\n"):
        with pytest.raises(ValueError, match="needs exactly one"):
            F.replace_block(bad, "x", "R.md")


def test_cli_writes_checks_and_refuses(tmp_path, claims, capsys):
    figures = tmp_path / "figures"
    figures.mkdir()
    claims.to_csv(figures / "claims.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{F.START}\nstale\n{F.END}\nafter\n")
    assert F.main(["--figures", str(figures), "--check", str(readme)]) == 1
    assert F.main(["--figures", str(figures), "--write", str(readme)]) == 0
    assert F.main(["--figures", str(figures), "--check", str(readme)]) == 0
    assert readme.read_text().endswith(f"{F.END}\nafter\n") and "Reversed" in readme.read_text()
    capsys.readouterr()
    assert F.main(["--figures", str(tmp_path / "nowhere"), "--check", str(readme)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "claims.csv" in err and "ffr figures --only claims" in err
    (tmp_path / "plain.md").write_text("no markers\n")
    assert F.main(["--figures", str(figures), "--write", str(tmp_path / "plain.md")]) == 2
    assert "needs exactly one" in capsys.readouterr().err
