"""JTT (training/methods/jtt.py): its upweighted set is exactly the ERM identification model's
errors; it trains without reading b (bit-identical weights with b scrambled); packed as alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.training import modes, runner
from ffr_lib.training.config import RunConfig
from ffr_lib.training.loop import logits_of
from ffr_lib.training.methods import JTT, make_method
from ffr_lib.training.methods.jtt import error_set, upweights
from ffr_lib.training.runner import Runner

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=2, width=8, batch_size=64, method="jtt",
                 hparams={"id_epochs": 1, "upweight": 5.0})

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_errors_and_weights_on_a_constructed_case():
    """Logits of 6 samples, 3 misclassified (samples 1, 3, 4): those and only those get weight
    lambda; with lambda 10 an epoch of N draws holds errors 30/33 of the time in expectation."""
    logits = torch.tensor([[2.0, 0], [2, 0], [0, 2], [2, 0], [0, 1], [0, 3]])
    y = torch.tensor([0, 1, 1, 1, 0, 1])
    assert error_set(logits, y).tolist() == [False, True, False, True, True, False]
    rule = make_method("jtt", torch.zeros(6, dtype=torch.int64), 1, {"upweight": 10}, y=y, reference=logits)
    assert rule.weights.tolist() == [1.0, 10.0, 1.0, 10.0, 10.0, 1.0]
    assert rule.state() == {"errors": 3, "n": 6, "upweight": 10.0}
    gen = torch.Generator().manual_seed(0)
    drawn = torch.cat([rule.epoch_indices(gen) for _ in range(2000)])
    share = rule.errors[drawn].double().mean().item()
    assert share == pytest.approx(30 / 33, abs=0.01)
    assert upweights(torch.tensor([True, False]), 1.0).tolist() == [1.0, 1.0]  # lambda 1 is ERM's sampling
    with pytest.raises(ValueError, match="identification model's logits"):
        make_method("jtt", torch.zeros(6, dtype=torch.int64), 1, y=y)
    assert JTT.reference_epochs({"id_epochs": 2}) == 2 and not JTT.uses_groups


def test_upweighted_set_is_exactly_the_erm_models_errors(tmp_path, monkeypatch):
    """The JTT run upweights exactly the training samples that the ERM run of `id_epochs` epochs
    (same data, start, lr and seed: an ordinary run of the store) misclassifies; its method saw
    one group only."""
    seen = {}
    original = JTT.__init__

    def spy(self, groups, n_groups, hparams=None, *, y=None, reference=None):
        original(self, groups, n_groups, hparams, y=y, reference=reference)
        seen.update(errors=self.errors.clone(), groups=groups.clone(), n_groups=n_groups)

    monkeypatch.setattr(JTT, "__init__", spy)
    store = ResultStore(tmp_path)
    erm = replace(TINY, method="erm", epochs=1)
    runner_ = Runner(store, keep=frozenset({erm.canonical().hash}))
    record = runner_.run(TINY)
    runner_.run(erm)
    model, _, _ = runner_.model_of(erm)
    train = modes.compose(erm).stages[-1]
    errors = logits_of(model, train.images).argmax(1) != train.y
    assert 0 < int(errors.sum()) < len(train)  # a case with something to upweight
    assert torch.equal(seen["errors"], errors)
    assert record["method_state"] == {"errors": int(errors.sum()), "n": len(train), "upweight": 5.0}
    assert seen["n_groups"] == 1 and int(seen["groups"].abs().sum()) == 0
    assert record["trained"] == [TINY.canonical().hash] and len(record["history"]) == 2


def _scrambled(compose):
    """modes.compose with the training sets' b (and g) permuted: the labels a method without
    groups must not read."""

    def run(config, *a, **k):
        data = compose(config, *a, **k)
        gen = torch.Generator().manual_seed(123)
        stages = tuple(replace(s, b=s.b[torch.randperm(len(s), generator=gen)],
                               g=s.g[torch.randperm(len(s), generator=gen)]) for s in data.stages)
        return replace(data, stages=stages)

    return run


@pytest.mark.parametrize("mode", ["none", "usb"])
def test_jtt_trains_without_reading_b(tmp_path, monkeypatch, mode):
    """The same JTT run on training sets whose b and g are scrambled ends with bit-identical
    weights, histories and validation and test metrics (validation keeps its groups: selection)."""
    config = replace(TINY, mode=mode, fingerprint=0.3).canonical()
    keep = frozenset({config.hash})
    plain = Runner(ResultStore(tmp_path / "plain"), keep=keep).run(config)
    monkeypatch.setattr(runner, "compose", _scrambled(modes.compose))
    scrambled = Runner(ResultStore(tmp_path / "scrambled"), keep=keep).run(config)
    assert plain["train_counts"] != scrambled["train_counts"]  # b did change
    a = ResultStore(tmp_path / "plain").load_checkpoint(config.hash)
    b = ResultStore(tmp_path / "scrambled").load_checkpoint(config.hash)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("val", "test", "best_epoch", "method_state"):
        assert plain[key] == scrambled[key], key
    assert [h["loss"] for h in plain["history"]] == [h["loss"] for h in scrambled["history"]]


def test_groupdro_does_read_b(tmp_path, monkeypatch):
    """The same scrambling changes a method with group labels (the check above can fail)."""
    config = replace(TINY, method="groupdro", hparams={}).canonical()
    plain = Runner(ResultStore(tmp_path / "plain")).run(config)
    monkeypatch.setattr(runner, "compose", _scrambled(modes.compose))
    scrambled = Runner(ResultStore(tmp_path / "scrambled")).run(config)
    assert plain["method_state"] != scrambled["method_state"]


def test_ffr_jtt_starts_both_steps_from_stage_one_and_packs_as_alone(tmp_path):
    """FFR + JTT: the prefix is FFR's stage 1; a pack of JTT runs (two lambdas, one ERM) writes
    the records of the runs alone (CPU: bit for bit)."""
    ffr = replace(TINY, mode="ffr", pre_lr=1e-3, fingerprint=0.3)
    configs = [ffr, replace(ffr, hparams={"id_epochs": 1, "upweight": 20.0}), replace(ffr, method="erm")]
    alone = Runner(ResultStore(tmp_path / "alone"))
    records = [alone.run(c) for c in configs]
    stage1 = ffr.prefix().hash
    assert records[0]["prefix"] == stage1 and records[0]["trained"] == [stage1, ffr.canonical().hash]
    assert records[1]["reused"] == [stage1]  # the second lambda starts from the same stage-1 model
    packed_store = ResultStore(tmp_path / "packed")
    packed = Runner(packed_store)
    packed.run(ffr.prefix())
    got = packed.run_pack(configs)
    for a, b in zip(records, got):
        assert b["pack"] == 3
        for key in ("val", "test", "method_state", "best_epoch"):
            assert a[key] == b[key], key
        assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
