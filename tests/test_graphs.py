"""CUDA graphs of the training step (training/graphs.py).

A graph replays fixed tensor addresses, so what the step updates must be updated in place: those
invariants are checked on any machine. That replaying gives the weights eager steps give is
checked where CUDA exists (bench/train_throughput.py measured a difference of exactly 0 on an
H100 for ERM; these tests add GroupDRO, a last smaller batch, frozen BN, packed runs and runs on
parallel streams; they run on the H100 through the device tool, `docs/performance.md` says when).
"""

from dataclasses import replace

import pytest
import torch

from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.training.config import RunConfig
from ffr_lib.training.graphs import StepGraph
from ffr_lib.training.loop import train_stage
from ffr_lib.training.methods import GroupDRO
from ffr_lib.training.models import build_model
from ffr_lib.training.modes import compose
from ffr_lib.training.packing import PackMember, train_packed

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=2, width=8, batch_size=64)


def test_groupdro_updates_q_in_place_with_the_same_values():
    groups = torch.tensor([0, 0, 1, 2])
    losses = torch.tensor([0.5, 0.7, 2.0, 1.0])
    rule = GroupDRO(groups, 3, {"step": 0.1})
    q = rule.q
    for _ in range(3):
        rule.reduce(losses, groups)
    per_group = torch.tensor([0.6, 2.0, 1.0])
    want = torch.full((3,), 1 / 3)
    for _ in range(3):  # the out-of-place formula, step by step
        want = want * torch.exp(0.1 * per_group)
        want = want / want.sum()
    assert rule.q is q  # a captured graph reads and writes this very tensor
    torch.testing.assert_close(rule.q, want, rtol=0, atol=1e-7)


def test_on_cpu_every_step_runs_eagerly():
    calls = []
    graph = StepGraph(lambda idx: calls.append(idx.clone()) or idx.sum(), torch.device("cpu"))
    for i in range(6):
        assert int(graph(torch.arange(i, i + 4))) == 4 * i + 6
    assert len(calls) == 6 and graph.graph is None and graph.replays == 0


def _model(seed: int, device: str):
    torch.manual_seed(seed)
    return build_model("resnet-small", 2, width=8).to(device).to(memory_format=torch.channels_last)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), key


@cuda
@pytest.mark.parametrize("method, freeze_bn", [("erm", False), ("groupdro", False), ("resampling", True)])
def test_replayed_steps_give_the_weights_of_eager_steps(method, freeze_bn):
    torch.backends.cudnn.deterministic = True
    data = compose(replace(TINY, mode="none", method=method))
    models = []
    for graphs in (True, False):
        model = _model(0, "cuda")
        result = train_stage(model, data.stages[-1], data.val, data.groups, method=method, epochs=3, batch_size=64,
                             seed=0, freeze_bn=freeze_bn, cuda_graphs=graphs)
        models.append((model, result))
    (graphed, r1), (eager, r2) = models
    assert len(data.stages[-1]) % 64 != 0  # the last batch is smaller: its own graph from epoch 2
    _same_weights(graphed, eager)
    # losses, and validation (a graph from epoch 2 too), as eager
    keys = ("loss", "val_wa", "val_ba")
    assert [[h[k] for k in keys] for h in r1.history] == [[h[k] for k in keys] for h in r2.history]
    assert r1.best_epoch == r2.best_epoch


@cuda
def test_the_last_batch_and_validation_get_their_own_graphs():
    from ffr_lib.training.loop import StageTrainer

    data = compose(replace(TINY, mode="none"))
    trainer = StageTrainer(_model(0, "cuda"), data.stages[-1], data.val, data.groups, batch_size=64)
    for _ in range(3):
        for idx in trainer.batches():
            trainer.step(idx)
        trainer.close_epoch(trainer.predict_val())
    full, last = len(data.stages[-1]) // 64, 1
    assert sorted(s[-1] for s in trainer.graph.captured) == [len(data.stages[-1]) % 64, 64]
    # full batches: 3 warm-up steps, then replays; the last batch: 1 warm-up epoch, then replays
    assert trainer.graph.replays == 3 * full - 3 + 2 * last
    assert trainer.val_graph.replays == 2


@cuda
def test_replayed_packed_steps_give_the_weights_of_eager_packed_steps():
    torch.backends.cudnn.deterministic = True
    data = compose(replace(TINY, mode="none"))
    members = [PackMember(data.stages[-1], data.val, m, lr, s)
               for s, (m, lr) in enumerate([("erm", 1e-3), ("groupdro", 3e-4), ("resampling", 1e-3)])]
    outs = []
    for graphs in (True, False):
        models = [_model(s, "cuda") for s in range(3)]
        train_packed(models, members, data.groups, epochs=2, batch_size=64, cuda_graphs=graphs)
        outs.append(models)
    for a, b in zip(*outs):
        _same_weights(a, b)


@cuda
def test_runs_on_parallel_streams_give_the_weights_of_runs_alone():
    """A pack launches each run on its own stream; with deterministic cuDNN kernels every run's
    weights are those of the run trained alone (sets of two sizes, so the streams' step counts
    differ)."""
    torch.backends.cudnn.deterministic = True
    datas = [compose(replace(TINY, mode="none", ratio=r, seed=s)) for s, r in enumerate((0.95, 0.9, 0.95))]
    specs = [("erm", 1e-3), ("groupdro", 3e-4), ("resampling", 1e-3)]
    members = [PackMember(d.stages[-1], d.val, m, lr, s) for s, (d, (m, lr)) in enumerate(zip(datas, specs))]
    packed = [_model(s, "cuda") for s in range(3)]
    train_packed(packed, members, datas[0].groups, epochs=2, batch_size=64)
    for s, (d, (m, lr)) in enumerate(zip(datas, specs)):
        alone = _model(s, "cuda")
        train_stage(alone, d.stages[-1], d.val, d.groups, method=m, lr=lr, epochs=2, batch_size=64, seed=s)
        _same_weights(packed[s], alone)


@cuda
def test_compiled_packed_steps_are_captured_and_train_like_eager_ones():
    """`ffr sweep --compile`: inductor's fused kernels inside each run's CUDA graph. The capture
    must succeed (a failure would warn and train eagerly), and since the kernels differ only in
    rounding, the losses follow the eager runs' closely."""
    import warnings

    torch._dynamo.reset()
    data = compose(replace(TINY, mode="none"))
    members = [PackMember(data.stages[-1], data.val, m, lr, s)
               for s, (m, lr) in enumerate([("erm", 1e-3), ("groupdro", 3e-4)])]
    results = {}
    for backend in (None, "inductor"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[backend] = train_packed([_model(s, "cuda") for s in range(2)], members, data.groups, epochs=2,
                                            batch_size=64, compile_backend=backend)
        assert not [w for w in caught if "capture failed" in str(w.message)]
    torch._dynamo.reset()
    for eager, compiled in zip(results[None], results["inductor"]):
        for a, b in zip(eager.history, compiled.history):
            assert b["loss"] == pytest.approx(a["loss"], rel=0.05)


def test_a_finished_stage_keeps_no_gradients_graphs_or_best_copy():
    """What only training needed is dropped when a stage ends (StageTrainer.release): on CUDA a
    gradient lives in a graph's private pool and would keep the pool's memory reserved."""
    from ffr_lib.training.loop import StageTrainer

    data = compose(replace(TINY, mode="none"))
    model = _model(0, "cpu")
    trainer = StageTrainer(model, data.stages[-1], data.val, data.groups, batch_size=64)
    for idx in trainer.batches():
        trainer.step(idx)
    trainer.close_epoch(trainer.predict_val())
    assert any(p.grad is not None for p in model.parameters())  # the check below can fail
    trainer.finish()
    assert all(p.grad is None for p in model.parameters())
    assert trainer.best_state is None
    for graph in (trainer.graph, trainer.val_graph):
        assert graph.captured == {} and not graph.enabled


def test_packed_runs_diverged_or_not_keep_no_gradients():
    data = compose(replace(TINY, mode="none"))
    models = [_model(s, "cpu") for s in (0, 1)]
    members = [PackMember(data.stages[-1], data.val, "erm", lr, 0) for lr in (1e-3, 1e12)]
    results = train_packed(models, members, data.groups, epochs=2, batch_size=64)
    assert not isinstance(results[0], Exception) and type(results[1]).__name__ == "Diverged"
    for model in models:
        assert all(p.grad is None for p in model.parameters())


@cuda
@pytest.mark.parametrize("fixed", [True, False])
def test_the_graph_pools_of_finished_packs_go_back_to_the_allocator(fixed, monkeypatch):
    """Pack after pack, reserved memory stays about flat (before the fix every pack's graph pools
    stayed: ~3 GiB more a pack of 8 in the paper sweep on an H100, until capture ran out of memory),
    even while the finished models live on. The first pack reserves the compiled step and its pools
    once and the second may add allocator segments; from then on a pack that keeps its pools adds
    about a tenth of pack 1's reservation (`fixed=False`, H100, session 15: 3,370, 3,731, 4,077,
    4,431 MB after packs 1-4), a pack that returns them little (H200, session 14: 2,057, 2,319,
    2,322, 2,431 MB). So packs 3-6 may add at most a quarter of pack 1's reservation: the fixed
    code stays near half that, the unfixed passes it, and `fixed=False` must fail the bound, or
    the bound proves nothing. Run with -s to see the reservations."""
    if not fixed:
        import ffr_lib.training.packing as packing
        from ffr_lib.training.loop import StageTrainer
        monkeypatch.setattr(packing, "return_pools", lambda *a, **k: None)
        monkeypatch.setattr(StageTrainer, "release", lambda self: None)
    data = compose(replace(TINY, mode="none"))
    kept, reserved = [], []
    for _ in range(6):
        models = [_model(s, "cuda") for s in range(4)]
        members = [PackMember(data.stages[-1], data.val, "erm", 1e-3, s) for s in range(4)]
        train_packed(models, members, data.groups, epochs=2, batch_size=64)
        kept += models  # the models outlive their pack, as a compiled forward's caches can keep them
        torch.cuda.synchronize()
        reserved.append(torch.cuda.memory_reserved())
    torch.cuda.empty_cache()
    print(f"fixed={fixed}: reserved after packs 1-6 (MB):", [round(r / 2**20) for r in reserved])
    assert (reserved[-1] - reserved[1] <= 0.25 * reserved[0]) == fixed, reserved
