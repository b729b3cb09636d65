"""The loop and the runner: determinism on CPU, best epoch by validation WA, frozen BN, FFR stage 2
from the whole stage-1 model, a diverged run recorded as a failure."""

from dataclasses import replace

import pytest
import torch

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.training import loop
from ffr_lib.training.config import RunConfig
from ffr_lib.training.loop import train_stage
from ffr_lib.training.models import MODELS, build_model
from ffr_lib.training.modes import compose
from ffr_lib.training.runner import Runner

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=2, width=8, batch_size=64)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_same_seed_same_metrics_on_cpu(tmp_path):
    config = replace(TINY, mode="usb", method="groupdro")
    a = Runner(ResultStore(tmp_path / "a"), threads=1).run(config)
    b = Runner(ResultStore(tmp_path / "b"), threads=1).run(config)
    assert a["status"] == b["status"] == "ok"
    assert a["test"] == b["test"] and a["val"] == b["val"] and a["test_synthetic"] == b["test_synthetic"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    assert a["method_state"] == b["method_state"]
    assert a["threads"] == 1 and a["deterministic"] is True
    other = Runner(ResultStore(tmp_path / "c"), threads=1).run(replace(config, seed=1))
    assert [h["loss"] for h in other["history"]] != [h["loss"] for h in a["history"]]


def test_best_epoch_by_validation_wa_and_record_fields(tmp_path):
    rec = Runner(ResultStore(tmp_path), threads=1).run(replace(TINY, epochs=3))
    keys = [(h["val_wa"], h["val_ba"], -h["val_loss"]) for h in rec["history"]]
    assert rec["best_epoch"] == 1 + keys.index(max(keys))  # first best by WA, then BA, then loss
    was = [h["val_wa"] for h in rec["history"]]
    assert rec["val"]["wa"] == pytest.approx(max(was))  # the kept model is that epoch's
    for key in ("hash", "config", "test", "val", "seconds", "device", "threads", "precision", "versions", "commit"):
        assert key in rec
    assert rec["precision"] == ("bf16-autocast" if loop.CPU_BF16 else "fp32")
    assert rec["eval_precision"] == "fp32" and rec["device_name"]
    assert rec["compiled"] is None  # eager unless the runner compiles
    assert set(rec["test"]["groups"]) == {"y0b0", "y0b1", "y1b0", "y1b1"}
    assert {"wa", "ba", "avg"} <= set(rec["test"])


def test_frozen_bn_keeps_running_statistics_and_trains_affine():
    torch.manual_seed(0)
    data = compose(TINY)
    model = build_model("resnet-small", 2, width=8)
    bn = model.backbone.stem[1]
    mean0, weight0 = bn.running_mean.clone(), bn.weight.detach().clone()
    train_stage(model, data.stages[0], data.val, data.groups, epochs=1, lr=1e-2, freeze_bn=True)
    assert torch.equal(bn.running_mean, mean0)  # statistics frozen
    assert not torch.equal(bn.weight.detach(), weight0)  # affine parameters trained
    train_stage(model, data.stages[0], data.val, data.groups, epochs=1, lr=1e-2, freeze_bn=False)
    assert not torch.equal(bn.running_mean, mean0)


def test_ffr_stage2_starts_from_the_whole_stage1_model(tmp_path):
    store = ResultStore(tmp_path)
    runner = Runner(store, threads=1, keep=frozenset())
    # stage 2 with lr 0 and frozen BN statistics changes nothing
    ffr = replace(TINY, mode="ffr", lr=0.0, pre_lr=1e-2, weight_decay=0.0, freeze_bn=True)
    rec = runner.run(ffr)
    stage1 = store.get(ffr.prefix().hash)
    assert rec["prefix"] == stage1["hash"] and rec["trained"] == [stage1["hash"], ffr.hash]
    # head included: with lr 0 the final model predicts exactly as stage 1 did
    assert rec["test"] == stage1["test"]
    assert store.load_checkpoint(stage1["hash"]) is not None  # cached for other stage-2 runs


def test_diverged_run_is_a_recorded_failure(tmp_path):
    store = ResultStore(tmp_path)
    rec = Runner(store, threads=1).run(replace(TINY, lr=float("inf")))
    assert rec["status"] == "failed" and rec["error"].startswith("diverged: loss is nan")
    assert store.get(rec["hash"])["status"] == "failed"
    assert store.frame().empty and len(store.frame(status=None)) == 1


def test_models_registry_and_shapes():
    assert {"resnet-small", "vit-small", "resnet18", "resnet50", "vit-b32"} <= set(MODELS.names())
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    for name in ("resnet-small", "vit-small"):
        model = build_model(name, 3, width=8).eval()
        assert model(x).shape == (2, 3) and model.features(x).shape == (2, model.feature_dim)


def test_missing_imagenet_weights_warn_and_train_from_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("FFR_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.warns(UserWarning, match="resnet18-.*not found.*trains from scratch"):
        model = build_model("resnet18", 2, pretrained=True)
    assert model.head.out_features == 2 and model.feature_dim == 512


def test_cpu_bf16_follows_the_cpu_and_can_be_turned_off(monkeypatch):
    """bf16 autocast and channels_last on a CPU only where oneDNN has native bf16 kernels, and
    never with FFR_CPU_BF16=0 (then a CPU run computes in fp32, NCHW)."""
    monkeypatch.setenv("FFR_CPU_BF16", "0")
    assert loop._cpu_bf16() is False
    monkeypatch.setenv("FFR_CPU_BF16", "1")
    native = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert loop._cpu_bf16() is native
    monkeypatch.setattr(loop, "CPU_BF16", False)
    cpu = torch.device("cpu")
    assert loop.precision(cpu) == "fp32" and not loop.channels_last(cpu)
    with loop._autocast(cpu):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(loop, "CPU_BF16", True)
    assert loop.precision(cpu) == "bf16-autocast" and loop.channels_last(cpu)
    with loop._autocast(cpu):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    # evaluation on a CPU: fp32 NCHW whatever the CPU
    assert loop.eval_precision(cpu) == "fp32" and not loop.channels_last(cpu, training=False)
    with loop._autocast(cpu, training=False):
        assert not torch.is_autocast_enabled("cpu")


def test_cpu_evaluation_is_the_same_with_and_without_bf16_training_kernels(monkeypatch):
    """Logits and features of a model on a CPU do not depend on whether bf16 training is on, nor
    on the model's memory format: evaluation is fp32 NCHW (a channels_last model is evaluated
    through an NCHW copy, and left as it was)."""
    torch.manual_seed(0)
    model = build_model("resnet-small", 2, width=8, pretrained=False).eval()
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    monkeypatch.setattr(loop, "CPU_BF16", False)
    ref, feats = loop.logits_of(model, images), loop.features_of(model, images)
    monkeypatch.setattr(loop, "CPU_BF16", True)
    assert torch.equal(loop.logits_of(model, images), ref)
    model.to(memory_format=torch.channels_last)
    assert torch.equal(loop.logits_of(model, images), ref) and torch.equal(loop.features_of(model, images), feats)
    assert not next(model.backbone.parameters()).is_contiguous()  # the model itself untouched


def test_a_cpu_stage_trained_in_bf16_ends_nchw(monkeypatch):
    """StageTrainer trains channels_last where bf16 pays and hands back an NCHW model."""
    monkeypatch.setattr(loop, "CPU_BF16", True)
    data = compose(TINY)
    model = build_model("resnet-small", 2, width=8, pretrained=False)
    train_stage(model, data.stages[0], data.val, data.groups, epochs=1)
    assert all(p.is_contiguous() for p in model.parameters())


def test_a_compiled_run_says_so_and_matches_the_eager_run(tmp_path):
    """Runner(compile_backend=...) records the backend; with dynamo's 'eager' backend (the same
    kernels) the run's metrics are the uncompiled run's."""
    torch._dynamo.reset()
    eager = Runner(ResultStore(tmp_path / "a"), threads=1).run(TINY)
    compiled = Runner(ResultStore(tmp_path / "b"), threads=1, compile_backend="eager").run(TINY)
    torch._dynamo.reset()
    assert compiled["compiled"] == "eager"
    assert [h["loss"] for h in compiled["history"]] == [h["loss"] for h in eager["history"]]
    assert compiled["test"] == eager["test"]


def test_epoch_ties_are_broken_by_ba_then_loss_then_the_earlier_epoch():
    """A degenerate run (validation WA 0 throughout) keeps the epoch with the best BA, not 1."""
    rows = [{"val_wa": 0.0, "val_ba": 0.50, "val_loss": 0.9}, {"val_wa": 0.0, "val_ba": 0.70, "val_loss": 0.8},
            {"val_wa": 0.0, "val_ba": 0.70, "val_loss": 0.6}, {"val_wa": 0.0, "val_ba": 0.70, "val_loss": 0.6}]
    keys = [loop.epoch_key(r) for r in rows]
    assert 1 + keys.index(max(keys)) == 3  # BA 0.7 ties at epochs 2-4; loss 0.6 at 3 and 4; the earlier
    assert loop.epoch_key({"val_wa": 0.1, "val_ba": 0.0, "val_loss": 9.0}) > max(keys)  # WA first
    assert loop.epoch_key({"val_wa": 0.0, "val_ba": 0.7, "val_loss": float("nan")}) < keys[1]  # NaN loss last


def test_a_stage_keeps_the_epoch_the_chain_picks(monkeypatch):
    """StageTrainer.close_epoch keeps the weights of the first best epoch by the chain."""
    data = compose(TINY)
    torch.manual_seed(0)
    model = build_model("resnet-small", 2, width=8, pretrained=False)
    rows = iter([(0.0, 0.5), (0.0, 0.75), (0.0, 0.75)])  # (WA, BA) per epoch: a degenerate run

    def fake_metrics(pred, y, b, groups, weights=None, *, set_name=""):
        wa, ba = next(rows)
        return {"wa": wa, "ba": ba}

    monkeypatch.setattr(loop, "evaluate_predictions", fake_metrics)
    result = train_stage(model, data.stages[0], data.val, data.groups, epochs=3)
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == (2 if losses[1] <= losses[2] else 3)
    assert all(h["val_loss"] > 0 for h in result.history)


def test_validation_loss_is_averaged_within_groups_then_over_groups():
    data = compose(TINY)
    model = build_model("resnet-small", 2, width=8, pretrained=False)
    trainer = loop.StageTrainer(model, data.stages[0], data.val, data.groups)
    y, b = data.val.y, data.val.b
    n = len(y)
    assert trainer._val_loss(torch.zeros(n, 2)) == pytest.approx(float(torch.log(torch.tensor(2.0))))
    # group (0, 0) right with margin 10, every other sample at logits 0: its loss ~0, the rest log 2
    logits = torch.zeros(n, 2)
    first = (y == 0) & (b == 0)
    logits[first, 0] = 10.0
    expected = (float(torch.nn.functional.softplus(torch.tensor(-10.0))) + 3 * float(torch.log(torch.tensor(2.0)))) / 4
    assert len(data.groups) == 4 and trainer._val_loss(logits) == pytest.approx(expected, rel=1e-5)
