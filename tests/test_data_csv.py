"""Ratings.from_csv on hostile files: every problem is an InputError naming the file and the
fix, never a traceback from pandas, codecs or the operating system."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesrec import Ratings
from bayesrec.errors import InputError


def _file(tmp_path, content: str | bytes, name: str = "ratings.csv") -> pathlib.Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def _deny(monkeypatch, denied: pathlib.Path) -> None:
    """Make opening ``denied`` fail as it does without read permission (tests may run as root)."""
    original = pathlib.Path.open

    def guarded(self, *args, **kwargs):
        if self == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", guarded)


# ----------------------------------------------------------------------------------------------
# each problem, with its message
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"ratings.csv is empty; a ratings file has a header row \(user, item, rating\)"),
        ("\n\n", r"ratings.csv is empty"),
        ("user,item,rating\n", r"empty data: .*ratings.csv has no rating rows"),
        ("user,item,rating\n1,2,3,4\n5,6,7,8\n",
         r"rows of .*ratings.csv have more fields than its header names \(\['user', 'item', "
         r"'rating'\]\); fix the header \(name a first column of row names"),
        ("user,item,rating\n1,a,3\n1,b,2,9\n", r"could not parse .*ratings.csv as a ratings "
                                               r"table: .*Expected 3 fields in line 3, saw 4"),
        ("u,i,r\n1,a,3\n", r"column\(s\) user='user', item='item', rating='rating' not in "
                           r".*ratings.csv, whose columns are \['u', 'i', 'r'\]; name them"),
        ("user,item,rating,timestamp\n1,a,3,yesterday\n",
         r"timestamps in .*ratings.csv must be numbers \(for example Unix seconds\) or ISO 8601 "
         r"dates, got values like \['yesterday'\]"),
        ("user,item,rating\n1,a,NA\n", r"1 rating\(s\) are NaN \(missing\)"),
        ("user,item,rating\n1,a,3\n1,a,4\n", r"1 duplicate \(user, item\) pair\(s\), for example "
                                             r"\[\('1', 'a'\)\]; pass duplicates='last'"),
    ],
)
def test_problem_files(tmp_path, content, message):
    with pytest.raises(InputError, match=message):
        Ratings.from_csv(_file(tmp_path, content))


@pytest.mark.parametrize("name", ["ratings.csv", "ratings.tsv"])  # sniffed, and not sniffed
def test_latin1_file_names_the_encoding(tmp_path, name):
    sep = "\t" if name.endswith(".tsv") else ","
    text = sep.join(["user", "item", "rating"]) + "\n" + sep.join(["José", "Amélie", "4"]) + "\n"
    path = _file(tmp_path, text.encode("latin-1"), name)
    with pytest.raises(InputError, match=rf"{re.escape(str(path))} is not valid utf-8 text "
                                         r"\(it holds the byte\(s\) b'\\xe9'.*pass it, for "
                                         r"example encoding='latin-1'"):
        Ratings.from_csv(path, scale="1-5")
    r = Ratings.from_csv(path, encoding="latin-1", scale="1-5")
    assert r.users.tolist() == ["José"] and r.items.tolist() == ["Amélie"]
    with pytest.raises(InputError, match=r"unknown encoding 'klingon'; give a Python codec name"):
        Ratings.from_csv(path, encoding="klingon")


@pytest.mark.parametrize("sep", [None, ","])
def test_unreadable_file(tmp_path, monkeypatch, sep):
    path = _file(tmp_path, "user,item,rating\n1,a,3\n2,b,4\n")
    _deny(monkeypatch, path)
    with pytest.raises(InputError, match=rf"cannot read {re.escape(str(path))}: Permission "
                                         r"denied; make it readable by this user"):
        Ratings.from_csv(path, sep=sep)


def test_unreadable_folder(tmp_path, monkeypatch):
    path = _file(tmp_path, "user,item,rating\n1,a,3\n2,b,4\n")
    original = pathlib.Path.stat

    def guarded(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "stat", guarded)
    with pytest.raises(InputError, match=rf"cannot look into {re.escape(str(tmp_path))}: "
                                         r"Permission denied; make that folder readable"):
        Ratings.from_csv(path)


def test_duplicates_policy_and_iso_dates(tmp_path):
    path = _file(tmp_path, "user,item,rating,timestamp\n1,a,3,2024-01-02\n1,a,5,2024-03-01T10:00Z"
                           "\n2,a,1,2023-12-31\n")
    r = Ratings.from_csv(path, duplicates="last", scale="1-5")
    assert dict(zip(r.user_ids, r.rating, strict=True)) == {"1": 5.0, "2": 1.0}
    assert r.timestamp.dtype.kind == "M"
    assert str(r.timestamp[list(r.user_ids).index("1")]) == "2024-03-01T10:00:00.000000"


def test_headerless_file_with_names(tmp_path):
    path = _file(tmp_path, "196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.data")
    r = Ratings.from_csv(path, names=["user", "item", "rating", "timestamp"], scale="1-5")
    assert r.users.tolist() == ["186", "196"]  # strings, as everywhere (id_type="int" converts)
    np.testing.assert_array_equal(np.sort(r.timestamp), [881250949, 891717742])


# ----------------------------------------------------------------------------------------------
# fuzz: a Ratings or an InputError, nothing else
# ----------------------------------------------------------------------------------------------
_cell = st.one_of(st.sampled_from(["1", "5", "3.5", "", "NA", "a", "-1", "1e309", "nan", "é",
                                   "2024-01-01", "\x00", '"', "'", "\\", " "]),
                  st.text(max_size=4))
_row = st.lists(_cell, min_size=0, max_size=5).map(lambda cells: ",".join(cells))
_csv_text = st.builds(
    lambda header, rows, end: header + "\n" + "\n".join(rows) + end,
    st.sampled_from(["user,item,rating", "user,item,rating,timestamp", "user;item;rating",
                     "user\titem\trating", "user item rating", "user::item::rating", "", "x"]),
    st.lists(_row, max_size=6),
    st.sampled_from(["", "\n", "\r\n"]),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    content=st.one_of(st.binary(max_size=200), _csv_text.map(lambda t: t.encode("utf-8")),
                      _csv_text.map(lambda t: t.encode("latin-1", "replace"))),
    name=st.sampled_from(["r.csv", "r.tsv", "r.txt"]),
    id_type=st.sampled_from(["str", "int"]),
    names=st.sampled_from([None, ["user", "item", "rating"], ["user", "item", "rating",
                                                               "timestamp"]]),
    duplicates=st.sampled_from(["error", "last", "mean"]),
    sep=st.sampled_from([None, None, ",", "::"]),  # "::" takes pandas' python engine
)
def test_from_csv_returns_ratings_or_raises_input_error(tmp_path, content, name, id_type, names,
                                                        duplicates, sep):
    path = tmp_path / name
    path.write_bytes(content)
    try:
        r = Ratings.from_csv(path, id_type=id_type, names=names, duplicates=duplicates, sep=sep)
    except InputError:
        return
    assert isinstance(r, Ratings) and len(r) > 0
    assert np.isfinite(r.rating).all() and r.scale.contains(r.rating).all()
