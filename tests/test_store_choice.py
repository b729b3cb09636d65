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
from ffr_lib.sweeps.profiles import get_profile


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


def test_progress_is_planned_once_while_the_store_is_unchanged(tmp_path, monkeypatch):
    import ffr_lib.tables as tables

    calls = []
    real = tables.staged_needs
    monkeypatch.setattr(tables, "staged_needs", lambda *a, **k: calls.append(1) or real(*a, **k))
    n = fill(tmp_path, CPU_PROFILE, drop=1)
    assert store_progress(CPU_PROFILE, tmp_path) == store_progress(CPU_PROFILE, tmp_path)
    assert len(calls) == 1
    # a new record changes the store: planned again, and counted
    last = get_profile(CPU_PROFILE).configs()[-1]
    ResultStore(tmp_path / CPU_PROFILE).write({"hash": last.hash, "config": last.to_dict(), "status": "ok"})
    progress = store_progress(CPU_PROFILE, tmp_path)
    assert len(calls) == 2 and (progress.recorded, progress.complete) == (n + 1, True)
    ResultStore(tmp_path / CPU_PROFILE).pack()  # the same records, packed: another state, the same answer
    assert store_progress(CPU_PROFILE, tmp_path) == progress and len(calls) == 3


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


def test_shown_ratio_keeps_a_held_ratio_and_says_when_it_cannot():
    from ffr_lib.store_choice import shown_ratio

    assert shown_ratio(0.999, [0.9, 0.999]) == (0.999, "")
    ratio, note = shown_ratio(0.999, [0.95, 0.99, 0.95])
    assert ratio == 0.99 and "no runs at 0.999" in note and "0.99" in note


def test_choice_meta_names_both_stores_only_on_a_fallback(tmp_path):
    from ffr_lib.store_choice import choice_meta

    fill(tmp_path, CPU_PROFILE)
    assert choice_meta(choose_store(CPU_PROFILE, tmp_path, "04")) == {}
    assert choice_meta(choose_store("paper", tmp_path, "04")) == {"default_store": "paper", "shown_store": CPU_PROFILE}


def test_the_cpu_profiles_notebook_05_section_is_the_cpu_study():
    import yaml

    from ffr_lib.notebooks import NOTEBOOKS
    from ffr_lib.store_choice import STUDY_FIELDS, cpu_study

    section = yaml.safe_load((NOTEBOOKS / "profiles" / f"{CPU_PROFILE}.yaml").read_text())["05_saliency"]
    study = cpu_study()
    assert set(study) == set(STUDY_FIELDS)
    assert {k: section[k] for k in STUDY_FIELDS if k != "results_dir"} == {k: v for k, v in study.items()
                                                                         if k != "results_dir"}
    assert section["results_dir"].endswith(f"/{CPU_PROFILE}") and study["results_dir"] == f"../results/{CPU_PROFILE}"


def test_notebook_05_falls_back_to_the_cpu_study_without_paper_checkpoints(tmp_path, monkeypatch):
    from ffr_lib.store_choice import choose_study, cpu_study

    paper = {"results_dir": str(tmp_path / "paper"), "dataset": "shapes-animals", "world": {}, "ratio": 0.999,
             "epochs": 20, "width": 32, "lr": 1e-3, "val_floor": 50, "seeds": [0, 1, 2]}
    cpu = dict(cpu_study(), results_dir=str(tmp_path / "cpu"))
    monkeypatch.setattr("ffr_lib.store_choice.cpu_study", lambda: cpu)
    choice = choose_study(paper, 0.3, 0.75)
    assert choice.fallback and choice.results_dir == cpu["results_dir"] and choice.seeds == [0]
    assert choice.base.width == 16 and choice.base.ratio == 0.99 and choice.checkpoints == (0, 4)
    assert choice.banner.startswith("FALLBACK") and "does not exist yet" in choice.banner
    # with the paper's 12 checkpoints in place (any bytes: only their presence is read), no fallback
    from ffr_lib.analysis.saliency_study import study_configs
    from ffr_lib.store_choice import STUDY_MODES, _study_base

    store = ResultStore(paper["results_dir"])
    configs = study_configs(_study_base(paper, 0.3, 0.75), STUDY_MODES, paper["seeds"])
    for c in configs.values():
        store.checkpoints.mkdir(parents=True, exist_ok=True)
        store.checkpoint_path(c.hash).write_bytes(b"x")
    kept = choose_study(paper, 0.3, 0.75)
    assert not kept.fallback and kept.checkpoints == (12, 12) and kept.base.width == 32
    assert kept.banner.startswith(f"Showing the models in `{paper['results_dir']}`")
    assert not choose_study(dict(paper, results_dir=str(tmp_path / "none")), 0.3, 0.75, fallback=False).fallback
