"""Metrics on a hand-worked example: per-group accuracy, WA, BA, average accuracy, worst class."""

import numpy as np
import pytest
import torch

from ffr_lib.metrics import (
    MissingGroupError,
    evaluate_predictions,
    group_accuracies,
    proportions,
    summarize,
)

# 10 samples in 4 (y, b) groups:
#   (0,0): 4 samples, 3 right -> 0.75     (0,1): 1 sample, 0 right -> 0.0
#   (1,0): 2 samples, 1 right -> 0.5      (1,1): 3 samples, 3 right -> 1.0
Y = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
B = [0, 0, 0, 0, 1, 0, 0, 1, 1, 1]
P = [0, 0, 0, 1, 1, 1, 0, 1, 1, 1]
GROUPS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_group_accuracies_by_hand():
    accs = group_accuracies(torch.tensor(P), torch.tensor(Y), torch.tensor(B), GROUPS)
    assert accs == {(0, 0): 0.75, (0, 1): 0.0, (1, 0): 0.5, (1, 1): 1.0}


def test_wa_ba_avg_by_hand():
    # training proportions: (0,0) 0.4, (0,1) 0.1, (1,0) 0.1, (1,1) 0.4
    weights = {(0, 0): 0.4, (0, 1): 0.1, (1, 0): 0.1, (1, 1): 0.4}
    out = evaluate_predictions(np.array(P), np.array(Y), np.array(B), GROUPS, weights)
    assert out["wa"] == 0.0
    assert out["ba"] == pytest.approx((0.75 + 0.0 + 0.5 + 1.0) / 4)  # 0.5625
    assert out["avg"] == pytest.approx(0.4 * 0.75 + 0.1 * 0.0 + 0.1 * 0.5 + 0.4 * 1.0)  # 0.75
    assert out["acc"] == pytest.approx(7 / 10)  # the set's own mix
    # classes: y=0 3 of 5 right, y=1 4 of 5 right
    assert out["classes"] == {"y0": pytest.approx(0.6), "y1": pytest.approx(0.8)}
    assert out["wca"] == pytest.approx(0.6)
    assert out["groups"] == {"y0b0": 0.75, "y0b1": 0.0, "y1b0": 0.5, "y1b1": 1.0}
    assert out["n"] == 10


def test_average_renormalises_over_evaluated_groups():
    accs = {(0, 0): 1.0, (1, 1): 0.0}
    # weights of other groups do not count; 3:1 over the two evaluated ones
    out = summarize(accs, {(0, 0): 0.3, (1, 1): 0.1, (0, 1): 0.6})
    assert out["avg"] == pytest.approx(0.75)


def test_proportions_from_training_labels():
    p = proportions(np.array(Y), np.array(B), GROUPS)
    assert p == {(0, 0): 0.4, (0, 1): 0.1, (1, 0): 0.2, (1, 1): 0.3}


def test_missing_group_is_an_error_naming_it():
    # the animals layout: 8 groups exist; drop every sample of (2, 3)
    groups = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3)]
    y = np.array([g[0] for g in groups if g != (2, 3)])
    b = np.array([g[1] for g in groups if g != (2, 3)])
    with pytest.raises(MissingGroupError, match=r"test set: no sample of group\(s\) y2b3"):
        evaluate_predictions(y, y, b, groups, set_name="test set")
    # groups not expected are simply not evaluated (no (0, 2) in the layout)
    out = evaluate_predictions(y, y, b, [g for g in groups if g != (2, 3)])
    assert len(out["groups"]) == 7 and out["wa"] == 1.0


def test_weights_lacking_a_group_is_an_error():
    with pytest.raises(MissingGroupError, match="y1b1"):
        summarize({(0, 0): 1.0, (1, 1): 0.5}, {(0, 0): 1.0})
