"""Splits: partitions, reproducibility, k-fold coverage, leave-k-out, temporal, cold ids."""

from __future__ import annotations

import numpy as np
import pytest

from bayesrec import Ratings
from bayesrec.data.splits import Split, holdout, kfold, leave_k_out, temporal
from bayesrec.errors import InputError


def _pairs(r: Ratings) -> set[tuple]:
    return set(zip(r.user_ids.tolist(), r.item_ids.tolist(), strict=True))


def assert_partition(parent: Ratings, split: Split) -> None:
    """Train and test share the universe, are disjoint, and hold every rating once."""
    train, test = split
    assert train.same_universe(parent) and test.same_universe(parent)
    assert len(train) + len(test) == len(parent)
    assert not _pairs(train) & _pairs(test)
    assert _pairs(train) | _pairs(test) == _pairs(parent)
    # the ratings and timestamps travel with their pairs
    parent_rows = set(zip(parent.user, parent.item, parent.rating, parent.timestamp, strict=True))
    rows = [set(zip(r.user, r.item, r.rating, r.timestamp, strict=True)) for r in split]
    assert rows[0] | rows[1] == parent_rows


def test_holdout_is_a_reproducible_partition(small_synthetic):
    ratings, _ = small_synthetic
    split = holdout(ratings, 0.25, seed=1)
    assert_partition(ratings, split)
    assert len(split.test) == 375 and split.name == "holdout"
    again = holdout(ratings, 0.25, seed=1)
    np.testing.assert_array_equal(split.test.user, again.test.user)
    np.testing.assert_array_equal(split.test.item, again.test.item)
    other = holdout(ratings, 0.25, seed=2)
    assert _pairs(other.test) != _pairs(split.test)


def test_kfold_tests_are_disjoint_and_cover_everything(small_synthetic):
    ratings, _ = small_synthetic
    folds = kfold(ratings, k=4, seed=0)
    assert [f.name for f in folds] == ["fold1", "fold2", "fold3", "fold4"]
    tests = [_pairs(f.test) for f in folds]
    assert sum(len(t) for t in tests) == len(ratings)
    assert set().union(*tests) == _pairs(ratings)
    for a in range(4):
        assert_partition(ratings, folds[a])
        assert len(folds[a].test) == 375
        for b in range(a + 1, 4):
            assert not tests[a] & tests[b]
    again = kfold(ratings, k=4, seed=0)
    assert [_pairs(f.test) for f in again] == tests
    assert [_pairs(f.test) for f in kfold(ratings, k=4, seed=5)] != tests


def test_kfold_uneven_sizes():
    r = Ratings.from_arrays(np.arange(7), np.zeros(7, dtype=int), np.ones(7) * 3, scale="1-5")
    sizes = sorted(len(f.test) for f in kfold(r, k=3, seed=0))
    assert sizes == [2, 2, 3]


def test_leave_k_out_gives_each_eligible_user_k_test_ratings(small_synthetic):
    ratings, _ = small_synthetic
    k, min_train = 2, 5
    split = leave_k_out(ratings, k=k, seed=3, min_train=min_train)
    assert_partition(ratings, split)
    counts = ratings.user_counts()
    test_counts = split.test.user_counts()
    eligible = counts >= k + min_train
    assert eligible.any() and (~eligible).any()  # both kinds occur in this data
    np.testing.assert_array_equal(test_counts[eligible], k)
    np.testing.assert_array_equal(test_counts[~eligible], 0)
    np.testing.assert_array_equal(split.train.user_counts(), counts - test_counts)
    assert split.name == "leave_2_out"
    again = leave_k_out(ratings, k=k, seed=3, min_train=min_train)
    assert _pairs(again.test) == _pairs(split.test)
    assert _pairs(leave_k_out(ratings, k=k, seed=4, min_train=min_train).test) != _pairs(
        split.test
    )


def test_temporal_global_cutoff(small_synthetic):
    ratings, _ = small_synthetic
    split = temporal(ratings, 0.2)
    assert_partition(ratings, split)
    assert len(split.test) == 300 and split.name == "temporal"
    assert split.train.timestamp.max() <= split.test.timestamp.min()


def test_temporal_ties_broken_by_position():
    r = Ratings.from_arrays([1, 2, 3, 4], [1, 1, 1, 1], [1, 2, 3, 4], timestamps=[5, 5, 5, 1],
                            scale="1-5")
    split = temporal(r, 0.5)
    assert split.test.user_ids.tolist() == [2, 3]


def test_temporal_per_user(small_synthetic):
    ratings, _ = small_synthetic
    split = temporal(ratings, 0.3, per_user=True)
    assert_partition(ratings, split)
    assert split.name == "temporal_per_user"
    train, test = split
    for u in range(ratings.n_users):
        tr, te = train.timestamp[train.user == u], test.timestamp[test.user == u]
        n_u = len(tr) + len(te)
        assert len(tr) >= 1
        assert len(te) == min(int(np.floor(0.3 * n_u + 0.5)), n_u - 1)
        if len(te):
            assert tr.max() <= te.min()
    assert len(split.cold_users) == 0


def test_temporal_needs_timestamps():
    r = Ratings.from_arrays([1, 2], [1, 1], [3, 4], scale="1-5")
    with pytest.raises(InputError, match="temporal\\(\\) needs timestamps, but these ratings "
                                         "have none"):
        temporal(r)


def test_cold_users_and_items_are_reported_not_dropped():
    parent = Ratings.from_arrays(
        ["a", "a", "b", "b", "c", "d"], ["x", "y", "x", "z", "y", "w"], [1, 2, 3, 4, 5, 1],
        scale="1-5",
    )
    # test: b-z (item z cold), c-y (user c cold), d-w (user d and item w cold)
    in_test = np.array([False, False, False, True, True, True])
    split = Split(parent.subset(~in_test), parent.subset(in_test), name="hand")
    assert split.cold_users.tolist() == ["c", "d"]
    assert split.cold_items.tolist() == ["w", "z"]
    assert len(split.test) == 3
    assert split.report() == (
        "hand: 3 train / 3 test ratings (50.0% test); test has 2 cold user(s) (2 ratings) "
        "and 2 cold item(s) (2 ratings)"
    )
    train, test = split
    assert train is split.train and test is split.test


def test_split_requires_a_shared_universe():
    a = Ratings.from_arrays([1, 2], [1, 2], [3, 4], scale="1-5")
    b = Ratings.from_arrays([1, 3], [1, 2], [3, 4], scale="1-5")
    with pytest.raises(InputError, match="must share the id universe and scale"):
        Split(a, b)
    with pytest.raises(InputError, match="Split.test must be a Ratings, got list"):
        Split(a, [])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: holdout(r, 0), "test_size must be strictly between 0 and 1, got 0"),
        (lambda r: holdout(r, 1.5), "test_size must be strictly between 0 and 1, got 1.5"),
        (lambda r: holdout(r, "0.2"), "test_size must be a number in \\(0, 1\\), got '0.2'"),
        (lambda r: holdout(r, 0.01), "leaves an empty test set"),
        (lambda r: holdout(r, 0.99), "leaves an empty training set"),
        (lambda r: kfold(r, 1), "k must be at least 2, got 1"),
        (lambda r: kfold(r, 2.5), "k must be an integer, got 2.5"),
        (lambda r: kfold(r, 11), "k=11 folds need at least 11 ratings, but there are 10"),
        (lambda r: leave_k_out(r, 0), "k must be at least 1, got 0"),
        (lambda r: leave_k_out(r, 1, min_train=-1), "min_train must be at least 0, got -1"),
        (lambda r: leave_k_out(r, 4), "no user has at least k \\+ min_train = 5 ratings"),
        (lambda r: temporal(r, 1.0), "test_size must be strictly between 0 and 1"),
        (lambda r: temporal(r, 0.1, per_user=True), "puts no rating in the test set"),
        (lambda r: holdout(r.to_dataframe()), "holdout\\(\\) needs a bayesrec.Ratings, got "
                                              "DataFrame"),
    ],
)
def test_argument_errors(call, message):
    # 10 ratings: user 1 has 4, user 2 has 3, user 3 has 3
    r = Ratings.from_arrays([1] * 4 + [2] * 3 + [3] * 3, list(range(4)) + [0, 1, 2] * 2,
                            [3] * 5 + [4] * 5, timestamps=np.arange(10), scale="1-5")
    with pytest.raises(InputError, match=message):
        call(r)
