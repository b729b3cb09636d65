"""Run packing: K runs trained as one grouped network compute what each run computes alone."""

from dataclasses import replace

import pytest
import torch

from ffr_lib.training.config import RunConfig
from ffr_lib.training.loop import train_stage
from ffr_lib.training.models import build_model
from ffr_lib.training.modes import compose
from ffr_lib.training.packing import PackMember, pack_state, packable, packed_like, train_packed, unpack_state
from ffr_lib.training.profiles import TINY_WORLD

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=2, width=8, batch_size=64)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _model(seed: int):
    torch.manual_seed(seed)
    return build_model("resnet-small", 2, width=8)


def test_pack_then_unpack_is_the_identity_and_packed_forward_is_each_models():
    models = [_model(s).eval() for s in range(3)]
    packed = packed_like(models[0], 3).eval()
    packed.load_state_dict(pack_state([m.state_dict() for m in models]))
    for m, state in zip(models, unpack_state(packed.state_dict(), 3)):
        assert state.keys() == m.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    x = [torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8) for _ in range(3)]
    with torch.no_grad():
        out = packed(torch.cat(x, dim=1))  # (5, K, C)
        for k, m in enumerate(models):
            torch.testing.assert_close(out[:, k], m(x[k]), atol=1e-5, rtol=1e-4)


def test_models_with_attention_are_refused():
    vit = build_model("vit-small", 2, width=8)
    assert not packable(vit)
    with pytest.raises(ValueError, match="cannot widen"):
        packed_like(vit, 2)


def _alone_and_packed(specs, epochs, batch_size=64):
    datas = [compose(replace(TINY, seed=s)) for _, _, s in specs]
    alone = []
    for d, (meth, lr, s) in zip(datas, specs):
        model = _model(s)
        result = train_stage(model, d.stages[0], d.val, d.groups, method=meth, lr=lr, epochs=epochs,
                             batch_size=batch_size, seed=s)
        alone.append((model, result))
    members = [PackMember(d.stages[0], d.val, meth, lr, s) for d, (meth, lr, s) in zip(datas, specs)]
    models = [_model(s) for _, _, s in specs]
    return alone, models, train_packed(models, members, datas[0].groups, epochs=epochs, batch_size=batch_size)


MIXED = [("erm", 1e-3, 0), ("groupdro", 3e-3, 1), ("resampling", 3e-4, 2)]


def test_packed_steps_equal_steps_alone():
    """Three runs (own split, method, lr, seed), two epochs of one full batch each: every run's
    losses, validation WAs, GroupDRO weights and final weights (batch-norm counters included)
    are those of the run trained alone by train_stage."""
    alone, models, results = _alone_and_packed(MIXED, epochs=2, batch_size=1024)
    for (model, ref), got, packed_model in zip(alone, results, models):
        assert [h["loss"] for h in got.history] == pytest.approx([h["loss"] for h in ref.history], rel=1e-6)
        assert [h["val_wa"] for h in got.history] == [h["val_wa"] for h in ref.history]
        assert got.best_epoch == ref.best_epoch and got.group_keys == ref.group_keys
        assert got.method_state.get("q", []) == pytest.approx(ref.method_state.get("q", []), abs=1e-6)
        for key, value in model.state_dict().items():
            diff = (packed_model.state_dict()[key].double() - value.double()).abs()
            # Adam's first steps are ~lr * sign(g): an element whose gradient is at rounding level
            # may step the other way, so a rare element differs by up to 2 steps of lr
            assert (diff > 1e-5).double().mean() < 0.02, key
            assert diff.max() <= 2 * 2 * 3e-3, key


def test_packed_training_follows_training_alone():
    """Over 3 epochs of small batches the runs stay on the trajectories of the runs alone. (The
    grouped convolution sums in another order, and Adam's sign-like steps on near-zero
    gradients amplify rounding as any change of kernel would, so the match is not bitwise.)"""
    alone, _, results = _alone_and_packed(MIXED, epochs=3)
    for (_, ref), got in zip(alone, results):
        assert [h["loss"] for h in got.history] == pytest.approx([h["loss"] for h in ref.history], rel=5e-3)


def test_members_of_unequal_sizes_are_refused():
    a, b = compose(replace(TINY, ratio=0.95)), compose(replace(TINY, ratio=0.9))
    members = [PackMember(a.stages[0], a.val, "erm", 1e-3, 0), PackMember(b.stages[0], b.val, "erm", 1e-3, 0)]
    with pytest.raises(ValueError, match="train set must have one size"):
        train_packed([_model(0), _model(0)], members, a.groups, epochs=1)


def test_a_diverging_member_fails_alone():
    data = compose(TINY)
    members = [PackMember(data.stages[0], data.val, "erm", 1e-3, 0),
               PackMember(data.stages[0], data.val, "erm", float("inf"), 0)]
    results = train_packed([_model(0), _model(0)], members, data.groups, epochs=2)
    assert results[0].best_epoch >= 1
    assert isinstance(results[1], Exception) and "loss is" in str(results[1])
