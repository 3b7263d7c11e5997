"""Ids: one rule everywhere.  Ids keep their value and type; files give the strings they hold
unless asked to convert; a type mismatch is named, never mistaken for a new id."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesrec import Ratings
from bayesrec.errors import InputError, UnknownIdError

# ids that pandas' defaults turn into numbers or into missing values
TRICKY_IDS = ["1", "1.0", "01", "001", "00001", "-0", "+1", "1e3", "1_000", "0x1", "inf", "NaN",
              "nan", "NA", "N/A", "null", "NULL", "None", "#N/A", "<NA>", "n/a", "True", " 1", "1 "]
_id_text = st.one_of(
    st.sampled_from(TRICKY_IDS),
    st.text(alphabet="0123456789.+-eE_xNAanul ", min_size=1, max_size=6),
)
_settings = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write(path, users, items=None):
    items = items or ["i"] * len(users)
    rows = "".join(f"{u},{i},{k % 5 + 1}\n" for k, (u, i) in enumerate(zip(users, items,
                                                                            strict=True)))
    path.write_text("user,item,rating\n" + rows)
    return path


# ----------------------------------------------------------------------------------------------
# ids read from a file stay the strings they were
# ----------------------------------------------------------------------------------------------
@_settings
@given(ids=st.lists(_id_text, min_size=2, max_size=12, unique=True))
def test_csv_ids_stay_the_strings_in_the_file(tmp_path, ids):
    r = Ratings.from_csv(_write(tmp_path / "ratings.csv", ids, ids[::-1]))
    assert r.user_ids.tolist() == ids and r.item_ids.tolist() == ids[::-1]
    assert all(type(u) is str for u in r.users.tolist())
    assert r.n_users == len(ids)  # "1" and "1.0", "01" and "1" are never merged


def test_numeric_looking_ids_are_not_merged_or_dropped(tmp_path):
    # once "1" and "1.0" were merged or kept apart depending on the other ids in the file
    numeric = _write(tmp_path / "numeric.csv", ["1", "1.0", "00001", "2"])
    mixed = _write(tmp_path / "mixed.csv", ["1", "1.0", "00001", "x"])
    assert Ratings.from_csv(numeric).users.tolist() == ["00001", "1", "1.0", "2"]
    assert Ratings.from_csv(mixed).users.tolist() == ["00001", "1", "1.0", "x"]


def test_na_like_ids_are_ids(tmp_path):
    r = Ratings.from_csv(_write(tmp_path / "r.csv", ["NA", "null", "None"], ["nan", "N/A", "#N/A"]))
    assert r.users.tolist() == ["NA", "None", "null"]
    assert sorted(r.items.tolist()) == ["#N/A", "N/A", "nan"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user,item,rating\n1,a,4\n,b,3\n",
         r"1 rating\(s\) in .*r.csv have no user id \(an empty field\), in data row\(s\) \[2\]"),
        ("user,item,rating\n1,a,4\n2,,3\n3,c,1\n4,,2\n",
         r"2 rating\(s\) in .* have no item id \(an empty field\), in data row\(s\) \[2, 4\]"),
        ("user,item,rating\n1,a,4\n2\n",
         r"1 rating\(s\) in .* have no item id"),  # a short row: the field is absent
    ],
)
def test_empty_id_fields_are_an_error(tmp_path, text, message):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        Ratings.from_csv(path)


# ----------------------------------------------------------------------------------------------
# id_type="int": explicit, strict conversion
# ----------------------------------------------------------------------------------------------
@_settings
@given(numbers=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=2, max_size=10, unique=True),
       zeros=st.integers(0, 3), plus=st.booleans())
def test_id_type_int_converts_integers(tmp_path, numbers, zeros, plus):
    def spell(n: int) -> str:
        sign = "-" if n < 0 else ("+" if plus else "")
        return sign + "0" * zeros + str(abs(n))

    path = _write(tmp_path / "r.csv", [spell(n) for n in numbers])
    r = Ratings.from_csv(path, id_type={"user": "int"})
    assert r.user_ids.tolist() == numbers
    assert r.users.dtype == np.int64 and all(type(u) is int for u in r.users.tolist())
    assert r.items.tolist() == ["i"]  # items are still strings


@_settings
@given(bad=st.sampled_from(["1.0", "1e3", "NA", "abc", "0x1", "1_000", "١", "--1", "1 2"]))
def test_id_type_int_rejects_non_integers(tmp_path, bad):
    path = _write(tmp_path / "r.csv", ["1", bad, "3"])
    with pytest.raises(InputError, match=r"user ids in .*r.csv are not all integers, for "
                                         rf"example \[{re.escape(repr(bad))}\]; read them as "
                                         r"strings \(id_type='str', the default\)"):
        Ratings.from_csv(path, id_type={"user": "int"})


def test_id_type_per_column_and_errors(tmp_path):
    path = _write(tmp_path / "r.csv", ["007", "8"], ["a", "b"])
    r = Ratings.from_csv(path, id_type={"user": "int"})
    assert r.users.tolist() == [7, 8] and r.items.tolist() == ["a", "b"]
    with pytest.raises(InputError, match=r"item ids in .* are not all integers, for example "
                                         r"\['a', 'b'\]"):
        Ratings.from_csv(path, id_type={"item": "int"})
    big = _write(tmp_path / "big.csv", [str(2**63), "1"])
    with pytest.raises(InputError, match=r"user ids in .* do not fit in 64 bits"):
        Ratings.from_csv(big, id_type="int")
    for bad in ("float", {"users": "int"}, {"user": int}):
        with pytest.raises(InputError, match="id_type must be 'str', 'int' or a dict"):
            Ratings.from_csv(path, id_type=bad)


# ----------------------------------------------------------------------------------------------
# codes_of: a type mismatch is named, in both modes
# ----------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=8, unique=True),
       pick=st.integers(0, 7), unknown=st.sampled_from(["error", "mask"]))
def test_string_of_a_known_int_id_is_named(ids, pick, unknown):
    r = Ratings.from_arrays(ids, ids, np.arange(len(ids)) % 5 + 1.0, scale="1-5")
    known = ids[pick % len(ids)]
    message = (rf"user id '{known}' \(str\) is unknown, but the users include {known} \(int\): "
               r"ids keep their type, so these are different users\. Pass user ids as int "
               rf"\(for example int\('{known}'\)\)")
    with pytest.raises(UnknownIdError, match=message):
        r.user_codes_of([ids[0], str(known)], unknown=unknown)
    with pytest.raises(UnknownIdError, match=r"user id '(-?\d+)' \(str\) is unknown, but the "
                                             r"users include \1 \(int\)"):
        r.user_codes_of(np.asarray([*ids, "NEW"]), unknown=unknown)  # numpy made them strings


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.integers(0, 10**6).map(str), min_size=1, max_size=8, unique=True),
       pick=st.integers(0, 7), unknown=st.sampled_from(["error", "mask"]))
def test_int_of_a_known_string_id_is_named(ids, pick, unknown):
    r = Ratings.from_arrays(ids, ids, np.arange(len(ids)) % 5 + 1.0, scale="1-5")
    known = ids[pick % len(ids)]
    with pytest.raises(UnknownIdError, match=rf"item id {int(known)} \(int\) is unknown, but "
                                             rf"the items include '{known}' \(str\)"):
        r.item_codes_of(int(known), unknown=unknown)


def test_mask_still_masks_ids_that_are_merely_unknown():
    r = Ratings.from_arrays([14, "x", 16], [1, 2, 3], [1, 2, 3])
    np.testing.assert_array_equal(r.user_codes_of([14, 15, "NEW"], unknown="mask"), [0, -1, -1])
    with pytest.raises(UnknownIdError, match=r"unknown user id\(s\) \[15, 'NEW'\]"):
        r.user_codes_of([14, 15, "NEW"])
    with pytest.raises(InputError, match="unknown must be 'error' or 'mask', got 'drop'"):
        r.user_codes_of([14], unknown="drop")
    with pytest.raises(InputError, match="user ids must be hashable"):
        r.user_codes_of([[14]])


def test_declared_universe_names_a_type_mismatch():
    with pytest.raises(UnknownIdError, match=r"user id '1' \(str\) is unknown, but the users "
                                             r"include 1 \(int\)"):
        Ratings.from_arrays(["1", 2], ["a", "a"], [3, 4], user_ids=[1, 2])


# ----------------------------------------------------------------------------------------------
# mixed universes keep each id's type
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ids", [[1, "a"], [1, 2.5], ["a", 1, 2.5, "1"], (3, "3")])
def test_mixed_ids_keep_their_types(ids):
    r = Ratings.from_arrays(ids, ids, np.arange(len(ids)) % 5 + 1.0, scale="1-5")
    assert [type(u) for u in r.user_ids.tolist()] == [type(u) for u in ids]
    assert r.user_ids.tolist() == list(ids)
    codes = r.user_codes_of(list(ids))
    assert [type(r.users[c]) for c in codes] == [type(u) for u in ids]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-(2**62), 2**62), st.text(max_size=4)), min_size=2,
                max_size=10, unique_by=lambda v: (type(v), v)))
def test_mixed_universe_round_trip(ids):
    r = Ratings.from_arrays(ids, ids, np.arange(len(ids)) % 5 + 1.0, scale="1-5")
    got = r.users[r.user_codes_of(ids)].tolist()
    assert [(type(v), v) for v in got] == [(type(v), v) for v in ids]
