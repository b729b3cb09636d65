"""bench/grid_progress.py --plan's GPU calls: the slices left packed into calls of CALL_SECONDS,
two at most, a slice that does not fit cut and carried to the next call."""

from __future__ import annotations

import pytest


@pytest.fixture
def gp(bench_script):
    return bench_script("grid_progress")


def _slice(name: str, minutes: float) -> dict:
    return {"command": f"bash scripts/device_slice.sh {name}", "minutes": minutes}


def _shares(groups) -> list[list[tuple[str, int]]]:
    return [[(row["command"].split()[-1], round(share)) for row, share in group] for group in groups]


def test_slices_share_a_call_and_a_long_one_goes_on_in_the_next(gp):
    start = gp.START_SECONDS  # 60
    # A needs 2 min: 60 + 120 = 180 s; B 10 min: 600 + 60 > the 360 s left, cut at 360 (300 s of work),
    # its other 300 s + a new start in call 2, whose leftover (540 - 360) goes to it as its last slice
    groups = gp.calls([_slice("A", 2), _slice("B", 10)], seconds=540, per_call=2, least=120)
    assert start == 60
    assert _shares(groups) == [[("A", 180), ("B", 360)], [("B", 540)]]


def test_no_slice_is_begun_in_a_calls_last_seconds_and_two_at_most(gp):
    # A: 60 + 400 = 460 s leaves 80 < 120: B waits for the next call, A gets the 80 s
    groups = gp.calls([_slice("A", 400 / 60), _slice("B", 1), _slice("C", 1), _slice("D", 1)],
                      seconds=540, per_call=2, least=120)
    assert _shares(groups) == [[("A", 540)], [("B", 120), ("C", 420)], [("D", 540)]]


def test_a_negligible_rest_gets_no_call(gp):
    # B: 60 + 320 = 380 s of which 360 fit: the 20 s left are under NEGLIGIBLE_SECONDS
    groups = gp.calls([_slice("A", 2), _slice("B", 320 / 60)], seconds=540, per_call=2, least=120)
    assert gp.NEGLIGIBLE_SECONDS > 20 and _shares(groups) == [[("A", 180), ("B", 360)]]
    groups = gp.calls([_slice("A", 2), _slice("B", 6)], seconds=540, per_call=2, least=120)
    assert [len(g) for g in groups] == [2, 1]  # 60 s left over: a call of its own


def test_a_calls_command_puts_each_slice_in_its_own_folder(gp):
    a = {"command": "FFR_PART=1/2 bash scripts/device_slice.sh paper-labelfree shapes-binary 0.99", "minutes": 1}
    b = {"command": "bash scripts/device_slice.sh paper shapes-animals 0.999 ffr", "minutes": 5}
    line = gp.call_command([(a, 120.0), (b, 419.6)], "abc123")
    assert line == ("export FFR_COMMIT=abc123; mkdir -p $OUT/a $OUT/b; "
                    "OUT=$OUT/a FFR_SLICE_SECONDS=120 FFR_PART=1/2 bash scripts/device_slice.sh paper-labelfree "
                    "shapes-binary 0.99; OUT=$OUT/b FFR_SLICE_SECONDS=419 bash scripts/device_slice.sh paper "
                    "shapes-animals 0.999 ffr")
