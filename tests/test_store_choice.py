"""What a notebook shows by default: the paper-scale store when complete, else a named fallback."""

import pytest

from ffr_lib.errors import UsageError
from ffr_lib.results import ResultStore
from ffr_lib.store_choice import (
    CPU_PROFILE,
    FALLBACKS,
    banner_html,
    choose_store,
    store_progress,
)
from ffr_lib.training.profiles import get_profile


def fill(results, profile, drop=0):
    """Write a minimal record for every run of `profile` but the last `drop`; returns the count written."""
    configs = get_profile(profile).configs()
    store = ResultStore(results / profile)
    kept = configs[: len(configs) - drop]
    for c in kept:
        store.write({"hash": c.hash, "config": c.to_dict(), "status": "ok"})
    return len(kept)


def test_the_fallback_chains_end_at_the_cpu_profile():
    assert FALLBACKS["paper"] == ("paper-v1", CPU_PROFILE)
    assert FALLBACKS["paper-ablations"] == (f"{CPU_PROFILE}-ablations",)


def test_progress_counts_records_and_creates_no_folder(tmp_path):
    assert store_progress(CPU_PROFILE, tmp_path).recorded == 0
    assert not (tmp_path / CPU_PROFILE).exists()
    n = fill(tmp_path, CPU_PROFILE, drop=1)
    progress = store_progress(CPU_PROFILE, tmp_path)
    assert (progress.recorded, progress.total, progress.complete) == (n, n + 1, False)


def test_shared_records_count_for_the_ablations_store(tmp_path):
    fill(tmp_path, CPU_PROFILE)
    shared = {c.hash for c in get_profile(CPU_PROFILE).configs()}
    own = get_profile(f"{CPU_PROFILE}-ablations").configs()
    progress = store_progress(f"{CPU_PROFILE}-ablations", tmp_path)
    assert progress.recorded == sum(c.hash in shared for c in own) > 0
    assert not (tmp_path / f"{CPU_PROFILE}-ablations").exists()


def test_a_complete_default_store_is_shown_without_fallback(tmp_path):
    fill(tmp_path, CPU_PROFILE)
    choice = choose_store(CPU_PROFILE, tmp_path, "04")
    assert (choice.sweep_profile, choice.fallback, choice.passed_over) == (CPU_PROFILE, False, ())
    assert choice.banner.startswith(f"Showing `{tmp_path / CPU_PROFILE}`")
    assert f"ffr notebooks --profile {CPU_PROFILE} --only 04" in choice.banner


def test_missing_paper_stores_fall_back_to_the_cpu_store_and_say_so(tmp_path):
    fill(tmp_path, CPU_PROFILE)
    choice = choose_store("paper", tmp_path, "04")
    assert choice.sweep_profile == CPU_PROFILE and choice.fallback
    assert [p.profile for p in choice.passed_over] == ["paper", "paper-v1"]
    assert all(p.recorded == 0 for p in choice.passed_over)
    assert choice.banner.startswith(f"FALLBACK: showing `{tmp_path / CPU_PROFILE}`")
    assert f"`{tmp_path / 'paper'}`" in choice.banner and "does not exist yet" in choice.banner
    assert "ffr sweep --profile paper" in choice.banner


def test_an_incomplete_store_is_passed_over_with_its_count(tmp_path):
    fill(tmp_path, CPU_PROFILE)
    n = fill(tmp_path, "paper-v1", drop=3)
    choice = choose_store("paper", tmp_path, "04")
    assert choice.sweep_profile == CPU_PROFILE
    assert f"holds {n:,} of its {n + 3:,} runs" in choice.banner


def test_no_fallback_or_partial_reads_the_requested_store(tmp_path):
    fill(tmp_path, CPU_PROFILE)
    for kwargs in ({"fallback": False}, {"partial": True}):
        choice = choose_store("paper", tmp_path, "04", **kwargs)
        assert choice.sweep_profile == "paper" and not choice.fallback


def test_nothing_complete_is_one_clear_error(tmp_path):
    fill(tmp_path, CPU_PROFILE, drop=1)
    with pytest.raises(UsageError, match="no complete store to show") as err:
        choose_store("paper", tmp_path, "04")
    assert str(tmp_path / CPU_PROFILE) in str(err.value)
    with pytest.raises(UsageError, match="unknown sweep profile 'papr'"):
        choose_store("papr", tmp_path, "04")


def test_the_banner_box_marks_a_fallback_and_keeps_code_spans():
    box = banner_html("FALLBACK: showing `results/quick` <b>")
    assert "#fff3cd" in box and "<code>results/quick</code>" in box and "&lt;b&gt;" in box
    assert "#e7f1ff" in banner_html("Showing `results/paper`")
