"""Numerics are recorded and a store refuses to mix them: precision, torch.compile and CPU threads
change results, so runs that differ in them must not share a store silently."""

from dataclasses import replace

import pytest

from ffr_lib.numerics import MixedNumerics, Numerics, check_store, of_record
from ffr_lib.results import ResultStore
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.sweeps.sweep import run_sweep

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_numerics_of_old_and_new_records():
    old_cpu = {"device": "cpu", "precision": "bf16-autocast", "threads": 1, "compiled": None}
    assert of_record(old_cpu) == Numerics("cpu", "bf16-autocast", "bf16-autocast", None, 1)  # evaluated as trained
    new_cpu = {**old_cpu, "eval_precision": "fp32"}
    assert of_record(new_cpu) == Numerics("cpu", "bf16-autocast", "fp32", None, 1)
    gpu = {"device": "cuda:0", "precision": "bf16-autocast", "threads": 16, "compiled": "inductor"}
    assert of_record(gpu) == Numerics("cuda", "bf16-autocast", "bf16-autocast", "inductor", None)  # threads: CPU only


def test_a_store_refuses_other_numerics_and_names_both():
    eager = {"device": "cuda", "precision": "bf16-autocast", "compiled": None}
    compiled = Numerics("cuda", "bf16-autocast", "bf16-autocast", "inductor")
    with pytest.raises(MixedNumerics) as err:
        check_store([eager, eager], compiled, "results/paper")
    msg = str(err.value)
    assert "results/paper holds 2 run(s) in cuda, train bf16-autocast, eval bf16-autocast, eager" in msg
    assert "compiled inductor" in msg and "--allow-mixed-numerics" in msg
    check_store([eager], compiled, "results/paper", allow_mixed=True)  # told to
    check_store([{**eager, "compiled": "inductor"}], compiled, "results/paper")  # the same numerics
    check_store([], compiled, "results/paper")  # an empty store


def test_a_sweep_with_other_threads_is_refused_before_training(tmp_path):
    configs = get_profile("smoke").configs()[:1]
    run_sweep(configs, str(tmp_path), executor="inprocess", progress=False, device="cpu", threads=1)
    store = ResultStore(tmp_path)
    assert len(store.hashes()) == 1
    more = [replace(configs[0], seed=1)]
    with pytest.raises(MixedNumerics, match="1 thread; this sweep would train in cpu.*2 threads"):
        run_sweep(more, str(tmp_path), executor="inprocess", progress=False, device="cpu", threads=2)
    assert len(store.hashes()) == 1  # nothing trained
    run_sweep(configs, str(tmp_path), executor="inprocess", progress=False, device="cpu", threads=2)  # all stored: fine
    summary = run_sweep(more, str(tmp_path), executor="inprocess", progress=False, device="cpu", threads=2,
                        allow_mixed_numerics=True)
    assert summary["done"] == 1 and len(store.hashes()) == 2
