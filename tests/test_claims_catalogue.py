"""The declared claims (ffr_lib.paper_claims): every claim of TARGETS.md is there with the paper's
numbers, claim 8's theorem check counts its tables, and figures/claims.csv is rebuilt from the
committed stores byte for byte."""

from pathlib import Path

import numpy as np
import pytest

from ffr_lib import claims as C
from ffr_lib import paper_claims as P

ROOT = Path(__file__).resolve().parents[1]


def test_every_claim_of_targets_is_declared():
    assert [c.number for c in P.CLAIMS] == ["1", "2", "3", "4", "5", "6", "6b", "6c", "7", "8", "L"]
    assert [c.number for c in P.claims_of("03")] == ["2", "3", "4", "7"]
    assert [c.number for c in P.claims_of("04")] == ["1", "6", "6b", "6c"]
    assert {c.evidence for c in P.CLAIMS} == {"runs", "probe", "theory"}
    for claim in P.CLAIMS:
        assert claim.comparisons and all(" > " in c.label for c in claim.comparisons if claim.evidence != "theory")


def test_paper_values_are_the_papers_differences():
    values = {(c.number, comp.label): comp.paper.value() for c in P.CLAIMS for comp in c.comparisons if comp.paper}
    expected = {("2", "1-2 > 2-1"): 72.6 - 59.6, ("2", "1-2 > stage 1 only"): 72.6 - 51.2,
                ("2", "1-2 > stage 2 only (None)"): 72.6 - 30.6, ("3", "balanced > biased"): 82.3 - 69.6,
                ("3", "biased > none"): 69.6 - 58.9, ("4", "FFR > USB at severity 5"): 50.6 - 29.5,
                ("4", "FFR > ASB at severity 5"): 50.6 - 32.9, ("7", "{bias} {class} > {class}"): 82.3 - 77.6,
                ("6", "FFR+GroupDRO > None+GroupDRO"): 13, ("6", "FFR+Resampling > None+Resampling"): 13,
                ("6", "FFR+DFR > None+DFR"): 4, ("1", "FFR > ASB"): (42.9 + 77.1 + 74.9 - 23.2 - 57.3 - 39.9) / 3}
    for key, value in expected.items():
        assert values[key] == pytest.approx(value), key
    assert np.isnan(values[("6b", "FFR+ERM > ASB+DFR")]) and np.isnan(values[("5", "USB > FFR")])


def test_theorem1_check_counts_its_tables():
    out = P.theorem1_check()
    exhaustive, world = out[P.EXHAUSTIVE], out[P.WORLD]
    # biased tables, by hand: 2x2 with counts 0-4: 24 x 24 ordered pairs of non-empty columns, less
    # the 64 proportional pairs = 512; 3x2 with counts 0-2: 26 x 26 less 40 proportional = 636
    assert exhaustive.cells == 512 + 636 and exhaustive.holds == exhaustive.cells
    assert exhaustive.verdict == C.SUPPORTED and exhaustive.effect > 0
    assert world.cells == 10 and world.holds == 10 and world.verdict == C.SUPPORTED
    assert world.effect == pytest.approx(0.399928, abs=1e-6)  # rho* at 90 %, the least biased split


def test_theorem1_check_finds_a_counterexample(monkeypatch):
    monkeypatch.setattr(P.T, "exhaustive_optimum", lambda real, k: (0.0, real))
    out = P.theorem1_check()[P.EXHAUSTIVE]
    assert out.verdict == C.NOT_SUPPORTED and out.note == "1148 counterexample(s)" and out.holds == 0


@pytest.mark.slow
@pytest.mark.skipif(not any((ROOT / "results" / "paper-v1" / "packs").glob("*.jsonl.gz")),
                    reason="committed results/paper-v1 absent")
def test_claims_csv_is_rebuilt_from_the_committed_stores(tmp_path):
    from ffr_lib.paper_figures.build import CLAIMS_META, build_claims

    art = build_claims(ROOT / "results", tmp_path, CLAIMS_META, ROOT / "figures")
    assert (tmp_path / "claims.csv").read_bytes() == (ROOT / "figures" / "claims.csv").read_bytes()
    assert set(art.table["store"]) >= {"paper-v1", "quick", "quick-ablations", C.THEORY_STORE}
