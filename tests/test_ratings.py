"""Ratings: validation (every error and its message), ids <-> codes, derived collections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesrec import Ratings, RatingScale
from bayesrec.errors import InputError, UnknownIdError


@pytest.fixture
def tiny() -> Ratings:
    """Three users (str ids), three items (int ids), five ratings with timestamps."""
    return Ratings.from_arrays(
        ["bob", "ann", "ann", "cy", "bob"],
        [20, 10, 30, 10, 10],
        [4, 5, 3, 1, 2],
        timestamps=[5, 1, 2, 4, 3],
        scale="1-5",
    )


# ----------------------------------------------------------------------------------------------
# construction and codes
# ----------------------------------------------------------------------------------------------
def test_codes_follow_sorted_ids(tiny):
    assert tiny.users.tolist() == ["ann", "bob", "cy"]
    assert tiny.items.tolist() == [10, 20, 30]
    np.testing.assert_array_equal(tiny.user, [1, 0, 0, 2, 1])
    np.testing.assert_array_equal(tiny.item, [1, 0, 2, 0, 0])
    assert tiny.user.dtype == np.int64 and tiny.rating.dtype == np.float64
    assert (tiny.n_users, tiny.n_items, len(tiny)) == (3, 3, 5)
    assert tiny.density == pytest.approx(5 / 9)


def test_arrays_are_read_only(tiny):
    with pytest.raises(ValueError, match="read-only"):
        tiny.rating[0] = 1.0


def test_from_dataframe_uses_timestamp_column():
    df = pd.DataFrame({"u": [1, 2], "i": ["a", "b"], "r": [1, 5], "timestamp": [10, 20]})
    r = Ratings.from_dataframe(df, user="u", item="i", rating="r")
    np.testing.assert_array_equal(r.timestamp, [10, 20])
    assert r.to_dataframe().columns.tolist() == ["user", "item", "rating", "timestamp"]


def test_from_csv(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n1,a,4\n2,b,3\n1,b,5\n")
    r = Ratings.from_csv(path)
    assert len(r) == 3 and r.items.tolist() == ["a", "b"]
    with pytest.raises(InputError, match="no ratings file at"):
        Ratings.from_csv(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("user,item,rating\n")
    with pytest.raises(InputError, match="empty data: .* has no rating rows"):
        Ratings.from_csv(empty)


# ----------------------------------------------------------------------------------------------
# validation: every error with its message
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(users=[1, 2], items=[1, 2], ratings=[3, np.nan]),
         r"1 rating\(s\) are NaN \(missing\), at position\(s\) \[1\]; drop the rows"),
        (dict(users=[1, 2], items=[1, 2], ratings=[np.inf, 3]),
         r"1 rating\(s\) are infinite, at position\(s\) \[0\]"),
        (dict(users=[1, 2], items=[1, 2], ratings=[3, 7], scale="1-5"),
         r"1 rating\(s\) are off the rating scale \{1, 2, 3, 4, 5\}: values \[7.0\]"),
        (dict(users=[1, 2], items=[1, 2], ratings=[0, 3], scale=[1, 2, 3]),
         r"off the rating scale .* declare the right scale="),
        (dict(users=[], items=[], ratings=[]), "empty data: there are no ratings"),
        (dict(users=[1, 2], items=[1], ratings=[3, 4]),
         r"mismatched lengths: \{'users': 2, 'items': 1, 'ratings': 2\}"),
        (dict(users=[1, 2], items=[1, 2], ratings=[3, 4], timestamps=[1]),
         r"mismatched lengths: .*'timestamps': 1"),
        (dict(users=[1, 2], items=[1, 2], ratings=["good", "bad"]),
         r"ratings must be numbers, got dtype .* with values like \['good', 'bad'\]"),
        (dict(users=[1, 2], items=[1, 2], ratings=[True, False]),
         "ratings must be numbers, got booleans"),
        (dict(users=[1, None], items=[1, 2], ratings=[3, 4]),
         r"missing user id \(NaN/None\) at position\(s\) \[1\]"),
        (dict(users=[1, 2], items=[np.nan, 2], ratings=[3, 4]),
         r"missing item id \(NaN/None\) at position\(s\) \[0\]"),
        (dict(users=[1, 2], items=[1, 2], ratings=[3, 4], timestamps=[1, None]),
         r"missing timestamp \(NaN/NaT\) at position\(s\) \[1\]"),
        (dict(users=[1, 2], items=[1, 2], ratings=[4, 4]),
         "cannot infer a rating scale: every rating equals 4.0"),
        (dict(users=1, items=[1], ratings=[3]), "users must be a one-dimensional array-like"),
        (dict(users=[[1, 2]], items=[[1, 2]], ratings=[[3, 4]]),
         r"users must be one-dimensional, got shape \(1, 2\)"),
        (dict(users=[1, 2], items=[1, 2], ratings=[3, 4], duplicates="first"),
         "duplicates must be one of"),
        (dict(users=[1, 2], items=[1, 2], ratings=[3, 4], user_ids=[1, 2, 2]),
         r"the declared user ids are not unique, for example \[2\]"),
        (dict(users=[1, 2], items=[1, 2], ratings=[3, 4], item_ids=[1, None, 2]),
         r"the declared item ids contain a missing value"),
    ],
)
def test_validation_errors(kwargs, message):
    kwargs = dict(kwargs)
    args = kwargs.pop("users"), kwargs.pop("items"), kwargs.pop("ratings")
    with pytest.raises(InputError, match=message):
        Ratings.from_arrays(*args, **kwargs)


def test_duplicates_error_names_pairs():
    with pytest.raises(InputError, match=r"1 duplicate \(user, item\) pair\(s\), for example "
                                         r"\[\('a', 'x'\)\]; pass duplicates='last'"):
        Ratings.from_arrays(["a", "a", "b"], ["x", "x", "x"], [1, 2, 3])


def test_duplicates_last_by_position():
    r = Ratings.from_arrays(["a", "b", "a"], ["x", "x", "x"], [1, 2, 5], duplicates="last")
    assert len(r) == 2
    assert dict(zip(r.user_ids, r.rating, strict=True)) == {"a": 5.0, "b": 2.0}


def test_duplicates_last_by_timestamp():
    # the later rating by time comes first by position
    r = Ratings.from_arrays(["a", "a", "b"], ["x", "x", "x"], [5, 1, 2],
                            timestamps=[20, 10, 15], duplicates="last")
    assert dict(zip(r.user_ids, r.rating, strict=True)) == {"a": 5.0, "b": 2.0}
    assert dict(zip(r.user_ids, r.timestamp, strict=True)) == {"a": 20, "b": 15}


def test_duplicates_mean_snaps_to_a_level():
    r = Ratings.from_arrays(["a", "a", "a", "b"], ["x", "x", "x", "x"], [1, 2, 2, 4],
                            timestamps=[1, 7, 3, 2], duplicates="mean", scale="1-5")
    out = dict(zip(r.user_ids, r.rating, strict=True))
    assert out == {"a": 2.0, "b": 4.0}  # mean 5/3 snaps to 2
    assert dict(zip(r.user_ids, r.timestamp, strict=True))["a"] == 7  # latest time kept
    cont = Ratings.from_arrays(["a", "a"], ["x", "x"], [1.0, 2.0], duplicates="mean",
                               scale=RatingScale.interval(0, 5))
    assert cont.rating.tolist() == [1.5]


def test_from_dataframe_errors():
    with pytest.raises(InputError, match="from_dataframe needs a pandas DataFrame, got dict"):
        Ratings.from_dataframe({"user": [1]})
    df = pd.DataFrame({"u": [1], "item": [1], "rating": [3]})
    with pytest.raises(InputError, match=r"column\(s\) user='user' not in the DataFrame"):
        Ratings.from_dataframe(df)


# ----------------------------------------------------------------------------------------------
# ids <-> codes
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ids",
    [
        [10, 3, 7],
        ["b", "a", "c"],
        [1, "a", 2.5],  # numpy alone would turn these into the strings "1", "a", "2.5"
        np.array([5, 1, 3], dtype=np.int64),
    ],
)
def test_id_round_trip(ids):
    r = Ratings.from_arrays(ids, ids, [1, 2, 3])
    codes = r.user_codes_of(list(ids))
    assert [r.users[c] for c in codes] == list(ids)
    assert r.user_ids.tolist() == list(ids)
    assert r.item_ids.tolist() == list(ids)
    np.testing.assert_array_equal(codes, r.user)


def test_unknown_ids(tiny):
    with pytest.raises(UnknownIdError, match=r"unknown user id\(s\) \['zed'\]: not among the 3"):
        tiny.user_codes_of(["ann", "zed"])
    with pytest.raises(KeyError):  # UnknownIdError is also a KeyError
        tiny.item_codes_of([99])
    np.testing.assert_array_equal(tiny.item_codes_of([30, 99], unknown="mask"), [2, -1])
    np.testing.assert_array_equal(tiny.user_codes_of("cy"), [2])


def test_ids_outside_declared_universe():
    with pytest.raises(UnknownIdError, match=r"1 rating\(s\) have a item id missing from the "
                                             r"declared items, for example \['q'\]"):
        Ratings.from_arrays([1, 2], ["p", "q"], [3, 4], item_ids=["p"])


def test_declared_universe_is_kept():
    r = Ratings.from_arrays([2], ["b"], [3], user_ids=[1, 2, 3], item_ids=["a", "b"],
                            scale="1-5")
    assert r.users.tolist() == [1, 2, 3] and r.items.tolist() == ["a", "b"]
    np.testing.assert_array_equal(r.user_counts(), [0, 1, 0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-(2**62), 2**62), st.text(max_size=5)),
                min_size=2, max_size=12, unique=True))
def test_id_round_trip_property(ids):
    # ids of any mix of ints and strings map to codes and back unchanged
    ratings = np.arange(len(ids)) % 5 + 1.0
    r = Ratings.from_arrays(ids, ids[::-1], ratings, scale="1-5")
    assert r.user_ids.tolist() == ids
    assert r.item_ids.tolist() == ids[::-1]
    assert r.users[r.user_codes_of(ids)].tolist() == ids
    assert sorted(map(repr, r.users.tolist())) == sorted(map(repr, ids))


_junk = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 9), st.text(max_size=3),
    st.none(), st.booleans(),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_junk, min_size=0, max_size=6), st.lists(st.one_of(st.integers(0, 3), st.none()),
                                                         min_size=0, max_size=6))
def test_malformed_input_raises_only_input_error(values, users):
    try:
        r = Ratings.from_arrays(users, [0] * len(users), values, scale="1-5")
    except InputError:
        return
    # when it is accepted, it is valid
    assert np.isin(r.rating, [1, 2, 3, 4, 5]).all() and len(r) == len(values) > 0


# ----------------------------------------------------------------------------------------------
# derived collections
# ----------------------------------------------------------------------------------------------
def test_subset_keeps_universe(tiny):
    sub = tiny.subset(np.array([0, 4]))
    assert sub.same_universe(tiny) and sub.fingerprint() == tiny.fingerprint()
    assert sub.users.tolist() == ["ann", "bob", "cy"]
    assert sub.user_ids.tolist() == ["bob", "bob"]
    np.testing.assert_array_equal(sub.timestamp, [5, 3])
    mask = tiny.rating >= 3
    np.testing.assert_array_equal(tiny.subset(mask).rating, [4, 5, 3])
    with pytest.raises(InputError, match="boolean mask has length 2, expected 5"):
        tiny.subset(np.array([True, False]))


def test_to_sparse_and_means(tiny):
    m = tiny.to_sparse()
    assert sp.issparse(m) and m.shape == (3, 3)
    np.testing.assert_array_equal(m.toarray(), [[5, 0, 3], [2, 4, 0], [1, 0, 0]])
    np.testing.assert_array_equal(tiny.rated_mask().toarray().sum(axis=1), [2, 2, 1])
    np.testing.assert_allclose(tiny.user_means(), [4.0, 3.0, 1.0])
    np.testing.assert_allclose(tiny.item_means(), [8 / 3, 4.0, 3.0])
    assert tiny.global_mean() == pytest.approx(3.0)
    np.testing.assert_array_equal(tiny.user_counts(), [2, 2, 1])
    sub = tiny.subset(np.array([1]))
    assert np.isnan(sub.user_means()[1:]).all()


def test_fingerprint(tiny):
    same = Ratings.from_arrays(["cy", "ann", "bob"], [30, 20, 10], [1, 1, 1], scale="1-5")
    assert same.fingerprint() == tiny.fingerprint()  # same ids and scale, other ratings
    other_scale = Ratings.from_arrays(["cy", "ann", "bob"], [30, 20, 10], [1, 1, 1],
                                      scale="1-10")
    other_ids = Ratings.from_arrays(["cy", "ann", "dan"], [30, 20, 10], [1, 2, 1], scale="1-5")
    str_items = Ratings.from_arrays(["cy", "ann", "bob"], ["30", "20", "10"], [1, 2, 1],
                                    scale="1-5")
    prints = {r.fingerprint() for r in (tiny, other_scale, other_ids, str_items)}
    assert len(prints) == 4


def test_summary_and_repr(tiny):
    s = tiny.summary()
    assert s["n_ratings"] == 5 and s["n_users_with_ratings"] == 3
    assert s["mean_rating"] == pytest.approx(3.0)
    assert "5 ratings, 3 users, 3 items" in repr(tiny) and "with timestamps" in repr(tiny)
