"""Methods own their hyperparameters (issue #24): RunConfig.hparams is a method-scoped mapping that
canonicalisation fills and hashes; every committed record keeps its hash; grids cross a method's
search space unless a profile sets the hyperparameter; selection tunes them per cell."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.grids import grid
from ffr_lib.sweeps.plan import closure
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.sweeps.selection import select, tuned_columns
from ffr_lib.tables import config_of
from ffr_lib.training.config import RunConfig
from ffr_lib.training.methods import METHODS, HParam, legacy_fields, search_space

ROOT = Path(__file__).resolve().parents[1]
STORES = ("quick", "quick-ablations", "paper-v1")


def _records(store: str) -> list[dict]:
    """A committed store's records, loose (runs/*.json) or packed (packs/*.jsonl.gz)."""
    from ffr_lib.results import ResultStore

    return ResultStore(ROOT / "results" / store).records()


@pytest.mark.parametrize("store", STORES)
def test_every_committed_record_keeps_its_hash(store):
    """The migration is the identity: from_dict reads `dro_step` into GroupDRO's hparams, and
    to_dict writes it back, so every stored config round-trips to its record and hash."""
    records = _records(store)
    assert records, f"results/{store} holds no records"
    for r in records:
        config = RunConfig.from_dict(r["config"])
        assert config.hash == r["hash"], (store, r["hash"])
        assert config.canonical().to_dict() == r["config"], (store, r["hash"])


@pytest.mark.parametrize(("store", "profile"), [("quick", "quick"), ("quick-ablations", "quick-ablations"),
                                                ("paper-v1", "paper-v1")])
def test_committed_stores_are_their_profiles_closure(store, profile):
    """Each profile still names exactly the runs of its store (grids cross the methods' search
    spaces, which for the paper's methods are single values)."""
    assert set(closure(get_profile(profile).configs())) == ResultStore(ROOT / "results" / store).hashes()


def test_canonical_holds_the_methods_hyperparameters_with_defaults():
    erm = RunConfig(method="erm", hparams={"step": 0.5})  # another method's: dropped
    assert erm.canonical().hparams == () and erm.hash == RunConfig().hash
    dro = RunConfig(method="groupdro")
    assert dro.canonical().hparams == (("step", 0.01),)
    assert RunConfig(method="groupdro", hparams={"step": 0.01}).hash == dro.hash
    faster = RunConfig(method="groupdro", hparams={"step": 0.1})
    assert faster.hash != dro.hash and faster.canonical().to_dict()["dro_step"] == 0.1
    assert "hparams" not in faster.canonical().to_dict()  # the step stays the flat field it was
    assert faster.label().endswith("none/groupdro[step=0.1] lr=0.001 s=0") and "[" not in dro.label()
    assert RunConfig.from_dict(faster.canonical().to_dict()) == faster.canonical()
    assert faster.cell() == dro.cell()  # a tuned hyperparameter is not part of the cell


def test_bad_hyperparameters_name_the_field():
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) stepp; known: .*step \(groupdro\)"):
        RunConfig(method="groupdro", hparams={"stepp": 1.0})
    with pytest.raises(ValueError, match=r"RunConfig.hparams\['step'\] of method 'groupdro' must be >= 0"):
        RunConfig(method="groupdro", hparams={"step": -1.0})
    with pytest.raises(ValueError, match="must be a number, got 'fast'"):
        RunConfig(method="groupdro", hparams={"step": "fast"})
    assert HParam(1, (1, 2), "epochs").coerce(2.0, "x") == 2
    with pytest.raises(ValueError, match="x must be an integer, got 1.5"):
        HParam(1, (1, 2), "epochs").coerce(1.5, "x")


def test_legacy_fields_are_declared_by_their_method():
    assert legacy_fields() == {"dro_step": ("groupdro", "step", 0.01)}
    assert all(set(spec.search) and spec.default is not None for m in METHODS.names()
               for spec in METHODS[m].hparams.values())


def test_grids_cross_the_search_space_unless_the_profile_sets_it(monkeypatch):
    """A grid takes each method's search space; a hyperparameter set in the base or on an axis
    overrides it (here GroupDRO's step, its search space widened for the test)."""
    spec = METHODS["groupdro"].hparams["step"]
    monkeypatch.setitem(METHODS["groupdro"].hparams, "step", replace(spec, search=(0.01, 0.1)))
    assert search_space("groupdro") == [{"step": 0.01}, {"step": 0.1}]
    assert search_space("groupdro", {"step": 0.3}) == [{"step": 0.3}]
    base = RunConfig(ratio=0.95)
    runs = grid(base, method=("erm", "groupdro")).configs()
    assert [(c.method, dict(c.hparams)) for c in runs] == [("erm", {}), ("groupdro", {"step": 0.01}),
                                                          ("groupdro", {"step": 0.1})]
    fixed = grid(replace(base, hparams={"step": 0.3}), method=("erm", "groupdro")).configs()
    assert [dict(c.canonical().hparams) for c in fixed] == [{}, {"step": 0.3}]
    axis = grid(base, method=("groupdro",), hparams=({"step": 0.2}, {"step": 0.4})).configs()
    assert [dict(c.hparams) for c in axis] == [{"step": 0.2}, {"step": 0.4}]


def _record(step: float, seed: int, val_wa: float) -> dict:
    config = RunConfig(method="groupdro", hparams={"step": step}, seed=seed).canonical()
    return {"hash": config.hash, "config": config.to_dict(), "status": "ok",
            "val": {"wa": val_wa, "ba": 0.5}, "test": {"wa": val_wa, "ba": 0.5}}


def test_selection_tunes_a_methods_hyperparameters_per_cell():
    """Two steps of one cell: the better mean validation WA wins, all its seeds are kept; the
    hp columns and dro_step are tuned, not cell columns; config_of reads them back."""
    from ffr_lib.results import records_frame

    records = [_record(0.01, s, 0.5) for s in (0, 1)] + [_record(0.1, s, 0.6 + 0.01 * s) for s in (0, 1)]
    frame = records_frame(records)
    assert "dro_step" in tuned_columns(frame)
    chosen = select(frame)
    assert sorted(chosen["seed"]) == [0, 1] and set(chosen["dro_step"]) == {0.1}
    assert [config_of(r).hash for r in chosen.to_dict("records")] == list(chosen["hash"])
    jtt_like = pd.DataFrame([{"hp_upweight": 5.0, "lr": 1e-3}])
    assert tuned_columns(jtt_like) == ["lr", "hp_upweight"]
