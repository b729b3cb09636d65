"""A grid cut into parts for GPU calls (sweeps/parts.py, `ffr sweep --part K/N`)."""

import pytest

from ffr_lib.cli import main
from ffr_lib.sweeps.grids import unique
from ffr_lib.sweeps.parts import cost, family, split
from ffr_lib.sweeps.plan import closure
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.sweeps.staging import gated_groups


def _ablations_at(ratio: float):
    return [c for c in unique(get_profile("paper-ablations").configs())
            if c.ratio == ratio and c.dataset == "shapes-binary"]


def _work(configs) -> float:
    return sum(cost(c) for c in closure(configs).values())


def test_parts_cover_the_grid_once_keep_families_whole_and_are_balanced():
    configs = _ablations_at(0.99)
    parts = split(configs, 5)
    assert sorted(c.hash for p in parts for c in p) == sorted(c.hash for c in configs)  # each run once
    owner = {family(c): k for k, p in enumerate(parts) for c in p}
    assert all(owner[family(c)] == k for k, p in enumerate(parts) for c in p)  # no family in two parts
    # staged search's groups (every stage-1 candidate lr of a cell) stay in one part
    for group in gated_groups(configs).values():
        assert len({owner[family(c)] for c in group}) == 1
    families = {}
    for c in configs:
        families.setdefault(family(c), []).append(c)
    largest = max(_work(m) for m in families.values())
    loads = [_work(p) for p in parts]
    assert max(loads) - min(loads) <= largest
    assert min(loads) > 0
    assert [[c.hash for c in p] for p in split(list(configs), 5)] == [[c.hash for c in p] for p in parts]


def test_one_part_is_the_grid_and_more_parts_than_families_leave_some_empty():
    configs = [c for c in unique(get_profile("smoke").configs())][:3]
    assert split(configs, 1) == [configs]
    parts = split(configs, len(configs) + 5)
    assert sum(len(p) for p in parts) == len(configs) and any(not p for p in parts)
    with pytest.raises(ValueError, match="at least 1"):
        split(configs, 0)


def test_sweep_part_runs_one_part_and_refuses_a_bad_part(tmp_path, capsys):
    args = ["sweep", "--profile", "quick", "--executor", "dry", "--results", str(tmp_path), "--ratio", "0.99"]
    assert main(args) == 0
    whole = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    listed = []
    for k in (1, 2, 3):
        assert main(args + ["--part", f"{k}/3"]) == 0
        listed += [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(whole)
    for bad, why in (("4/3", "K must be between 1 and N"), ("two", "expected K/N, e.g. 2/5"),
                     ("0/2", "K must be between 1 and N")):
        assert main(args + ["--part", bad]) == 2
        assert capsys.readouterr().err == f"ffr sweep: --part {bad}: {why}\n"
