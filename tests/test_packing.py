"""Run packing: K runs trained at once (each on its own CUDA stream on a GPU) compute what each
run computes alone; on CPU bit for bit."""

from dataclasses import replace

import pytest
import torch

from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.training.config import RunConfig
from ffr_lib.training.loop import Diverged, train_stage
from ffr_lib.training.models import build_model
from ffr_lib.training.modes import compose
from ffr_lib.training.packing import PackMember, train_packed

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=2, width=8, batch_size=64)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _model(seed: int, name: str = "resnet-small"):
    torch.manual_seed(seed)
    return build_model(name, 2, width=8)


def _alone_and_packed(specs, epochs, batch_size=64, name="resnet-small", freeze_bn=False):
    """specs: (method, lr, seed, ratio) per run; each run's own split of the tiny world."""
    datas = [compose(replace(TINY, seed=s, ratio=r)) for _, _, s, r in specs]
    alone = []
    for d, (meth, lr, s, _) in zip(datas, specs):
        model = _model(s, name)
        result = train_stage(model, d.stages[0], d.val, d.groups, method=meth, lr=lr, epochs=epochs,
                             batch_size=batch_size, seed=s, freeze_bn=freeze_bn)
        alone.append((model, result))
    members = [PackMember(d.stages[0], d.val, meth, lr, s) for d, (meth, lr, s, _) in zip(datas, specs)]
    models = [_model(s, name) for *_, s, _ in specs]
    packed = train_packed(models, members, datas[0].groups, epochs=epochs, batch_size=batch_size, freeze_bn=freeze_bn)
    return alone, models, packed


MIXED = [("erm", 1e-3, 0, 0.95), ("groupdro", 3e-3, 1, 0.95), ("resampling", 3e-4, 2, 0.95)]


def _same_run(model, ref, packed_model, got):
    assert [h["loss"] for h in got.history] == [h["loss"] for h in ref.history]
    assert [h["val_wa"] for h in got.history] == [h["val_wa"] for h in ref.history]
    assert got.best_epoch == ref.best_epoch and got.group_keys == ref.group_keys
    assert got.method_state == ref.method_state
    for key, value in model.state_dict().items():
        assert torch.equal(packed_model.state_dict()[key], value), key


def test_packed_runs_equal_runs_alone_bit_for_bit():
    """Three runs (own split, method, lr, seed), three epochs of small batches with a smaller
    last batch: every run's losses, validation WAs, best epoch, GroupDRO weights and final
    weights (batch-norm counters included) are exactly those of the run trained alone."""
    alone, models, results = _alone_and_packed(MIXED, epochs=3)
    assert len(compose(TINY).stages[0]) % 64 != 0
    for (model, ref), got, packed_model in zip(alone, results, models):
        _same_run(model, ref, packed_model, got)


def test_members_of_unequal_sizes_and_frozen_bn_share_a_pack():
    """Sets of different sizes (ratios 0.95 and 0.9) take different numbers of steps an epoch;
    each run still equals its run alone (frozen batch norm too)."""
    specs = [("erm", 1e-3, 0, 0.95), ("erm", 1e-3, 1, 0.9)]
    alone, models, results = _alone_and_packed(specs, epochs=2, freeze_bn=True)
    sizes = {len(compose(replace(TINY, seed=s, ratio=r)).stages[0]) for *_, s, r in specs}
    assert len(sizes) == 2
    for (model, ref), got, packed_model in zip(alone, results, models):
        _same_run(model, ref, packed_model, got)


def test_attention_models_pack_too():
    alone, models, results = _alone_and_packed(MIXED[:2], epochs=1, name="vit-small")
    for (model, ref), got, packed_model in zip(alone, results, models):
        _same_run(model, ref, packed_model, got)


def test_a_diverging_member_fails_alone():
    data = compose(TINY)
    members = [PackMember(data.stages[0], data.val, "erm", 1e-3, 0),
               PackMember(data.stages[0], data.val, "erm", float("inf"), 0)]
    results = train_packed([_model(0), _model(0)], members, data.groups, epochs=2)
    assert results[0].best_epoch >= 1
    assert isinstance(results[1], Diverged) and "loss is" in str(results[1])


def test_models_and_members_must_match():
    data = compose(TINY)
    with pytest.raises(ValueError, match="2 models for 1 members"):
        train_packed([_model(0), _model(1)], [PackMember(data.stages[0], data.val, "erm", 1e-3, 0)], data.groups)


def test_compiled_forward_is_shared_by_the_pack_and_trains_what_eager_trains():
    """compile_backend routes the full batches' forward through torch.compile (the smaller last
    batch stays eager): with dynamo's 'eager' backend (the same kernels) the packed runs' weights
    are exactly the uncompiled ones, and the three runs share one captured graph (dynamo guards
    on the network's structure, not on the instance), so a pack compiles once."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    datas = [compose(replace(TINY, seed=s)) for _, _, s, _ in MIXED]
    members = [PackMember(d.stages[0], d.val, meth, lr, s) for d, (meth, lr, s, _) in zip(datas, MIXED)]
    assert len(datas[0].stages[0]) % 64 != 0  # a last batch that must not reach the compiled forward
    eager = [_model(s) for *_, s, _ in MIXED]
    ref = train_packed(eager, members, datas[0].groups, epochs=2, batch_size=64)
    counters.clear()
    compiled = [_model(s) for *_, s, _ in MIXED]
    got = train_packed(compiled, members, datas[0].groups, epochs=2, batch_size=64, compile_backend="eager")
    assert counters["stats"]["unique_graphs"] == 1
    for model, r, packed_model, g in zip(eager, ref, compiled, got):
        _same_run(model, r, packed_model, g)
    torch._dynamo.reset()
