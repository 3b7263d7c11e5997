"""Metrics against hand-computed values; validation messages."""

from __future__ import annotations

import numpy as np
import pytest

from bayesrec import Ratings
from bayesrec.errors import InputError
from bayesrec.metrics import (
    accuracy,
    coverage,
    mae,
    ndcg_at_k,
    precision_at_k,
    ranking_scores,
    recall_at_k,
    rmse,
    score,
)
from bayesrec.predictions import QUANTILES, draw_quantiles, from_normal


def test_point_metrics_by_hand():
    y = [1, 2, 3]
    assert rmse(y, [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert mae(y, [1, 2, 5]) == pytest.approx(2 / 3)
    assert mae(y, [2, 2, 2]) == pytest.approx(2 / 3)
    assert accuracy(y, [1, 2, 3.5]) == pytest.approx(2 / 3)
    assert accuracy(np.array([4.0, 5.0]), np.array([4.0, 4.0])) == 0.5


def test_coverage_by_hand():
    # 1 in [0, 1] yes; 2 in [2.5, 3] no; 3 in [3, 3] yes (ends count); 4 in [0, 3] no
    assert coverage([1, 2, 3, 4], [0, 2.5, 3, 0], [1, 3, 3, 3]) == 0.5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rmse([1, 2], [1]), "mismatched lengths"),
        (lambda: mae([], []), "empty"),
        (lambda: accuracy([1, np.nan], [1, 2]), "missing or infinite"),
        (lambda: rmse([[1, 2]], [[1, 2]]), "one-dimensional"),
        (lambda: rmse(["a"], [1]), "must be numbers"),
        (lambda: coverage([1, 2], [0, 3], [2, 1]), "lower > upper"),
    ],
)
def test_validation_messages(call, message):
    with pytest.raises(InputError, match=message):
        call()


# users interleaved on purpose: A has 4 test items, B 2, C 2 (none relevant)
USERS = ["A", "B", "A", "C", "A", "B", "A", "C"]
TRUE = [5, 2, 3, 1, 4, 4, 1, 2]
SCORE = [0.9, 0.5, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4]
# A ranked: 5 (rel), 3, 4 (rel), 1;  B ranked: 2, 4 (rel);  C: no relevant item, ignored


def test_ranking_metrics_k3_by_hand():
    ndcg_a = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    ndcg_b = (1 / np.log2(3)) / 1
    assert precision_at_k(USERS, TRUE, SCORE, k=3) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert recall_at_k(USERS, TRUE, SCORE, k=3) == pytest.approx(1.0)
    assert ndcg_at_k(USERS, TRUE, SCORE, k=3) == pytest.approx((ndcg_a + ndcg_b) / 2)


def test_ranking_metrics_k1_by_hand():
    assert precision_at_k(USERS, TRUE, SCORE, k=1) == pytest.approx(0.5)
    assert recall_at_k(USERS, TRUE, SCORE, k=1) == pytest.approx(0.25)
    assert ndcg_at_k(USERS, TRUE, SCORE, k=1) == pytest.approx(0.5)


def test_ranking_threshold_and_perfect_order():
    # ranking by the true rating itself is ideal: nDCG 1
    assert ndcg_at_k(USERS, TRUE, TRUE, k=2, threshold=2) == pytest.approx(1.0)
    with pytest.raises(InputError, match="no user has a test rating >= threshold 6"):
        precision_at_k(USERS, TRUE, SCORE, threshold=6)
    with pytest.raises(InputError, match="k must be a positive integer"):
        recall_at_k(USERS, TRUE, SCORE, k=0)
    with pytest.raises(InputError, match="mismatched lengths"):
        ndcg_at_k(USERS[:-1], TRUE, SCORE)


@pytest.fixture
def held_out() -> Ratings:
    return Ratings.from_arrays(["u1", "u1", "u2", "u2"], ["i1", "i2", "i1", "i3"],
                               [5, 3, 4, 1], scale="1-5")


def test_score_by_hand(held_out):
    # two exact predictions, two off by one; a tiny sd makes intervals (almost) points
    mean = np.array([5, 3, 3, 2], dtype=float)
    pred = from_normal(held_out.user_ids, held_out.item_ids, mean, 1e-6, held_out.scale)
    scores = score(pred, held_out)
    assert scores["rmse"] == pytest.approx(np.sqrt(0.5))
    assert scores["mae"] == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(0.5)
    for key in ("coverage_50", "coverage_80", "coverage_90", "coverage_95"):
        assert scores[key] == pytest.approx(0.5), key
    # a wide predictive covers everything
    wide = from_normal(held_out.user_ids, held_out.item_ids, mean, 10.0, held_out.scale)
    assert score(wide, held_out, levels=(0.9,))["coverage_90"] == 1.0


def test_score_rejects_misaligned(held_out):
    scale = held_out.scale
    swapped = from_normal(held_out.user_ids[::-1], held_out.item_ids[::-1], np.full(4, 3.0),
                          1.0, scale)
    with pytest.raises(InputError, match="prediction's pairs are not the test set's"):
        score(swapped, held_out)
    short = from_normal(held_out.user_ids[:3], held_out.item_ids[:3], np.full(3, 3.0), 1.0, scale)
    with pytest.raises(InputError, match="prediction has 3 pairs but the test set has 4"):
        score(short, held_out)
    with pytest.raises(InputError, match="test must be a bayesrec.Ratings"):
        score(short, [1, 2, 3])
    good = from_normal(held_out.user_ids, held_out.item_ids, np.full(4, 3.0), 1.0, scale)
    with pytest.raises(InputError, match="level 0.7 needs the quantiles"):
        score(good, held_out, levels=(0.7,))


def test_ranking_scores_uses_prediction_mean(held_out):
    # u1: i1 (5, relevant) ranked below i2; u2: i1 (4, relevant) ranked first
    pred = from_normal(held_out.user_ids, held_out.item_ids, [2.0, 3.0, 4.0, 1.0], 1.0,
                       held_out.scale)
    out = ranking_scores(pred, held_out, k=1)
    assert out == pytest.approx({"precision_at_1": 0.5, "recall_at_1": 0.5,
                                 "ndcg_at_1": 0.5, "n_users": 2})
    out = ranking_scores(pred, held_out, k=2)
    assert out["recall_at_2"] == 1.0
    assert out["ndcg_at_2"] == pytest.approx((1 / np.log2(3) + 1) / 2)


@pytest.mark.parametrize("n_draws", [1, 2, 7, 400])
def test_draw_quantiles_match_numpy(n_draws):
    # Ties (rounded draws) and tiny samples included: the same numbers as numpy's
    # default "linear" quantiles, up to rounding.
    draws = np.round(np.random.default_rng(n_draws).normal(3, 1, size=(n_draws, 50)), 1)
    probs = np.array(QUANTILES + (0.0, 1.0))
    np.testing.assert_allclose(draw_quantiles(draws, probs), np.quantile(draws, probs, axis=0),
                               rtol=0, atol=1e-12)
